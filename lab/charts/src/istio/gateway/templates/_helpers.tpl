{{/* Stand-in for Istio's gateway chart, for the reconcile lab. */}}

{{- define "gateway.name" -}}
{{- .Values.name | default .Release.Name -}}
{{- end -}}

{{/* app and istio: from values.labels, else the name and the name without "istio-". */}}
{{- define "gateway.selectorLabels" -}}
{{- $name := include "gateway.name" . -}}
{{- $labels := .Values.labels | default dict -}}
app: {{ get $labels "app" | default $name | quote }}
istio: {{ get $labels "istio" | default ($name | trimPrefix "istio-") | quote }}
{{- end -}}

{{/* The Service's and pods' labels: selector labels, values.labels, the network, chart defaults. */}}
{{- define "gateway.labels" -}}
{{- $labels := merge (include "gateway.selectorLabels" . | fromYaml) (deepCopy (.Values.labels | default dict)) (dict "istio.io/dataplane-mode" "none") -}}
{{- with .Values.networkGateway -}}
{{- $_ := set $labels "topology.istio.io/network" . -}}
{{- end -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* With networkGateway the Service carries the network-gateway ports instead of service.ports. */}}
{{- define "gateway.ports" -}}
{{- if .Values.networkGateway -}}
- {name: status-port, port: 15021, protocol: TCP, targetPort: 15021}
- {name: tls, port: 15443, protocol: TCP, targetPort: 15443}
- {name: tls-istiod, port: 15012, protocol: TCP, targetPort: 15012}
- {name: tls-webhook, port: 15017, protocol: TCP, targetPort: 15017}
{{- else -}}
{{- toYaml .Values.service.ports -}}
{{- end -}}
{{- end -}}
