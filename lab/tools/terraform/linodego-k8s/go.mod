// A stand-in, written for the lab, for the github.com/linode/linodego/k8s module, which the
// Go module proxy does not serve: Linode's Terraform provider imports only
// pkg/condition.ClusterHasReadyNode from it. check.sh builds the provider with a replace
// directive pointing here. Nothing else uses this module.
module github.com/linode/linodego/k8s

go 1.25

require (
	github.com/linode/linodego v1.69.1
	k8s.io/api v0.28.1
	k8s.io/apimachinery v0.28.1
	k8s.io/client-go v0.28.1
)
