{{/* Stand-in for Istio's istiod chart, for the reconcile lab. */}}

{{- define "istiod.clusterID" -}}
{{- .Values.global.multiCluster.clusterName | default "Kubernetes" -}}
{{- end -}}

{{- define "istiod.labels" -}}
app: istiod
istio.io/rev: default
install.operator.istio.io/owning-resource: unknown
operator.istio.io/component: Pilot
release: {{ .Release.Name }}
app.kubernetes.io/name: istiod
app.kubernetes.io/part-of: istio
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
