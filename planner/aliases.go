package planner

import "github.com/reconcile-dev/reconcile/plan"

// Transitional: the plan types moved to package plan.
type (
	Step       = plan.Step
	Plan       = plan.Plan
	Change     = plan.Change
	Layer      = plan.Layer
	Kind       = plan.Kind
	Action     = plan.Action
	Summary    = plan.Summary
	GraphError = plan.GraphError
)

const (
	NoOp    = plan.NoOp
	Create  = plan.Create
	Update  = plan.Update
	Delete  = plan.Delete
	Replace = plan.Replace
	Wait    = plan.Wait

	Managers = plan.Managers
	Members  = plan.Members
	Mesh     = plan.Mesh
	Weights  = plan.Weights

	KindCluster           = plan.KindCluster
	KindKubeconfig        = plan.KindKubeconfig
	KindKarmadaRelease    = plan.KindKarmadaRelease
	KindKarmadaKubeconfig = plan.KindKarmadaKubeconfig
	KindKarmadaReady      = plan.KindKarmadaReady
	KindJoin              = plan.KindJoin
	KindMemberReady       = plan.KindMemberReady
	KindUnjoin            = plan.KindUnjoin
	KindRootCA            = plan.KindRootCA
	KindMeshNamespace     = plan.KindMeshNamespace
	KindCACerts           = plan.KindCACerts
	KindMeshRelease       = plan.KindMeshRelease
	KindExpose            = plan.KindExpose
	KindReaderToken       = plan.KindReaderToken
	KindRemoteSecret      = plan.KindRemoteSecret
	KindMeshTeardown      = plan.KindMeshTeardown
	KindManifests         = plan.KindManifests
	KindPolicy            = plan.KindPolicy

	KnownAfterApply = plan.KnownAfterApply
	Sensitive       = plan.Sensitive
)

var Layers = plan.Layers

// Options change what the planner may propose.
type Options struct {
	// AllowDestroy lifts the guard against deleting the manager or many members at once.
	AllowDestroy bool
}
