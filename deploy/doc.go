// Package deploy holds what runs reconcile itself inside a cluster: the Helm chart in
// charts/reconcile. Its tests lint and render the chart with the Helm SDK and apply it to a lab
// kube-apiserver, whose RBAC authorizer checks what the chart grants. No product code imports it.
package deploy
