package karmadalab

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// webhook is one admission webhook of karmada-webhook: the rules and paths follow the chart's
// _karmada_webhook_configuration.tpl (v1.18.2); only the client config differs (a loopback url).
type webhook struct {
	name, path    string
	ops           []admissionregistrationv1.OperationType
	group, res    string
	scope         admissionregistrationv1.ScopeType
	timeout       int32
	sideEffects   admissionregistrationv1.SideEffectClass
	deleteProtect bool // only objects labelled resourcetemplate.karmada.io/deletion-protected
}

var (
	createUpdate = []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	createOnly   = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	deleteOnly   = []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}
	namespaced   = admissionregistrationv1.NamespacedScope
	clusterScope = admissionregistrationv1.ClusterScope
)

var mutatingWebhooks = []webhook{
	{name: "propagationpolicy.karmada.io", path: "/mutate-propagationpolicy", ops: createUpdate, group: "policy.karmada.io", res: "propagationpolicies", scope: namespaced},
	{name: "clusterpropagationpolicy.karmada.io", path: "/mutate-clusterpropagationpolicy", ops: createUpdate, group: "policy.karmada.io", res: "clusterpropagationpolicies", scope: clusterScope},
	{name: "overridepolicy.karmada.io", path: "/mutate-overridepolicy", ops: createUpdate, group: "policy.karmada.io", res: "overridepolicies", scope: namespaced},
	{name: "resourcebinding.karmada.io", path: "/mutate-resourcebinding", ops: createOnly, group: "work.karmada.io", res: "resourcebindings", scope: namespaced},
	{name: "clusterresourcebinding.karmada.io", path: "/mutate-clusterresourcebinding", ops: createOnly, group: "work.karmada.io", res: "clusterresourcebindings", scope: clusterScope},
	{name: "work.karmada.io", path: "/mutate-work", ops: createUpdate, group: "work.karmada.io", res: "works", scope: namespaced},
	{name: "autoscaling.karmada.io", path: "/mutate-federatedhpa", ops: createUpdate, group: "autoscaling.karmada.io", res: "federatedhpas", scope: namespaced},
	{name: "multiclusterservice.karmada.io", path: "/mutate-multiclusterservice", ops: createUpdate, group: "networking.karmada.io", res: "multiclusterservices", scope: namespaced},
}

var validatingWebhooks = []webhook{
	{name: "propagationpolicy.karmada.io", path: "/validate-propagationpolicy", ops: createUpdate, group: "policy.karmada.io", res: "propagationpolicies", scope: namespaced},
	{name: "clusterpropagationpolicy.karmada.io", path: "/validate-clusterpropagationpolicy", ops: createUpdate, group: "policy.karmada.io", res: "clusterpropagationpolicies", scope: clusterScope},
	{name: "overridepolicy.karmada.io", path: "/validate-overridepolicy", ops: createUpdate, group: "policy.karmada.io", res: "overridepolicies", scope: namespaced},
	{name: "clusteroverridepolicy.karmada.io", path: "/validate-clusteroverridepolicy", ops: createUpdate, group: "policy.karmada.io", res: "clusteroverridepolicies", scope: clusterScope},
	{name: "config.karmada.io", path: "/validate-resourceinterpreterwebhookconfiguration", ops: createUpdate, group: "config.karmada.io", res: "resourceinterpreterwebhookconfigurations", scope: clusterScope},
	{name: "resourceinterpretercustomization.karmada.io", path: "/validate-resourceinterpretercustomization", ops: createUpdate, group: "config.karmada.io", res: "resourceinterpretercustomizations", scope: clusterScope, timeout: 10},
	{name: "federatedresourcequota.karmada.io", path: "/validate-federatedresourcequota", ops: createUpdate, group: "policy.karmada.io", res: "federatedresourcequotas", scope: namespaced},
	{name: "multiclusteringress.karmada.io", path: "/validate-multiclusteringress", ops: createUpdate, group: "networking.karmada.io", res: "multiclusteringresses", scope: namespaced},
	{name: "multiclusterservice.karmada.io", path: "/validate-multiclusterservice", ops: createUpdate, group: "networking.karmada.io", res: "multiclusterservices", scope: namespaced},
	{name: "resourcedeletionprotection.karmada.io", path: "/validate-resourcedeletionprotection", ops: deleteOnly, group: "*", res: "*", scope: admissionregistrationv1.AllScopes, deleteProtect: true},
	{name: "resourcebinding.karmada.io", path: "/validate-resourcebinding", ops: createUpdate, group: "work.karmada.io", res: "resourcebindings", scope: namespaced, sideEffects: admissionregistrationv1.SideEffectClassNoneOnDryRun},
}

func (w webhook) parts(baseURL string, caBundle []byte) (admissionregistrationv1.WebhookClientConfig, []admissionregistrationv1.RuleWithOperations, *metav1.LabelSelector, *int32, *admissionregistrationv1.SideEffectClass) {
	url := baseURL + w.path
	scope := w.scope
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: w.ops,
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{w.group}, APIVersions: []string{"*"}, Resources: []string{w.res}, Scope: &scope},
	}}
	var sel *metav1.LabelSelector
	if w.deleteProtect {
		sel = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "resourcetemplate.karmada.io/deletion-protected", Operator: metav1.LabelSelectorOpExists,
		}}}
	}
	timeout := w.timeout
	if timeout == 0 {
		timeout = 3
	}
	se := w.sideEffects
	if se == "" {
		se = admissionregistrationv1.SideEffectClassNone
	}
	return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}, rules, sel, &timeout, &se
}

// webhookConfigurations builds the chart's mutating-config and validating-config with every
// client config pointing at baseURL (https://127.0.0.1:<port>).
func webhookConfigurations(baseURL string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	fail := admissionregistrationv1.Fail
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mutating-config", Labels: map[string]string{"app": "karmada-webhook"}}}
	for _, w := range mutatingWebhooks {
		cc, rules, sel, timeout, se := w.parts(baseURL, caBundle)
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name: w.name, ClientConfig: cc, Rules: rules, ObjectSelector: sel, FailurePolicy: &fail,
			SideEffects: se, AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: timeout,
		})
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "validating-config", Labels: map[string]string{"app": "karmada-webhook"}}}
	for _, w := range validatingWebhooks {
		cc, rules, sel, timeout, se := w.parts(baseURL, caBundle)
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name: w.name, ClientConfig: cc, Rules: rules, ObjectSelector: sel, FailurePolicy: &fail,
			SideEffects: se, AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: timeout,
		})
	}
	return m, v
}
