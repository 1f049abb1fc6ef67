{{/* The chart's name, truncated to a DNS label. */}}
{{- define "reconcile.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: a DNS label. */}}
{{- define "reconcile.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "reconcile.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reconcile.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reconcile.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "reconcile.labels" -}}
helm.sh/chart: {{ include "reconcile.chart" . }}
{{ include "reconcile.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "reconcile.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reconcile.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace of the state backend's Secrets and Lease. */}}
{{- define "reconcile.stateNamespace" -}}
{{- default .Release.Namespace .Values.state.namespace }}
{{- end }}

{{/* The ConfigMap holding fleet.yaml, created or existing. */}}
{{- define "reconcile.fleetConfigMapName" -}}
{{- if .Values.fleet.configMap.name }}
{{- .Values.fleet.configMap.name }}
{{- else }}
{{- printf "%s-fleet" (include "reconcile.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The fleet source, checked: exactly one of a ConfigMap (created or existing) and git-sync.
Renders "configMap" or "gitSync", or fails with what to set.
*/}}
{{- define "reconcile.fleetSource" -}}
{{- $cm := .Values.fleet.configMap }}
{{- $git := .Values.fleet.gitSync }}
{{- $useCM := or $cm.create (ne $cm.name "") }}
{{- if and $useCM $git.enabled }}
{{- fail "fleet: configure exactly one fleet source, not both: fleet.configMap (create or name) and fleet.gitSync.enabled are both set" }}
{{- else if $git.enabled }}
{{- if not $git.repo }}
{{- fail "fleet.gitSync.repo: set the git repository to sync fleet.yaml from" }}
{{- end }}
{{- if or (not $git.path) (hasPrefix "/" $git.path) (contains ".." $git.path) }}
{{- fail "fleet.gitSync.path: set fleet.yaml's path relative to the repository root" }}
{{- end }}
{{- print "gitSync" }}
{{- else if $useCM }}
{{- if and $cm.create (not $cm.content) }}
{{- fail "fleet.configMap.content: set the fleet.yaml to embed (--set-file fleet.configMap.content=fleet.yaml) when fleet.configMap.create is true" }}
{{- end }}
{{- print "configMap" }}
{{- else }}
{{- fail "fleet: configure exactly one fleet source: fleet.configMap.create=true with fleet.configMap.content, fleet.configMap.name of an existing ConfigMap, or fleet.gitSync.enabled=true with fleet.gitSync.repo" }}
{{- end }}
{{- end }}

{{/* The path the daemon reads fleet.yaml from. */}}
{{- define "reconcile.fleetFile" -}}
{{- if eq (include "reconcile.fleetSource" .) "gitSync" }}
{{- printf "/git/%s/%s" .Values.fleet.gitSync.link .Values.fleet.gitSync.path }}
{{- else }}
{{- printf "/fleet/%s" .Values.fleet.configMap.key }}
{{- end }}
{{- end }}

{{/* git-sync's arguments; oneTime makes the init container's clone. */}}
{{- define "reconcile.gitSyncArgs" -}}
{{- $git := .root.Values.fleet.gitSync }}
- --repo={{ $git.repo }}
- --ref={{ $git.ref }}
- --root=/git
- --link={{ $git.link }}
- --depth={{ $git.depth }}
{{- if .oneTime }}
- --one-time
{{- else }}
- --period={{ $git.period }}
{{- end }}
{{- range $git.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{- define "reconcile.gitSyncContainer" -}}
{{- $git := .root.Values.fleet.gitSync }}
- name: {{ .name }}
  image: "{{ $git.image.repository }}:{{ $git.image.tag }}"
  imagePullPolicy: {{ $git.image.pullPolicy }}
  args:
    {{- include "reconcile.gitSyncArgs" . | trim | nindent 4 }}
  env:
    # git writes its config and credentials under HOME; the root filesystem is read-only.
    - name: HOME
      value: /tmp
    {{- with $git.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  securityContext:
    {{- /* The image's own user, the one in its /etc/passwd, which ssh needs. */}}
    {{- toYaml (merge (dict "runAsUser" 65533 "runAsGroup" 65533) .root.Values.securityContext) | nindent 4 }}
  {{- with $git.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: git
      mountPath: /git
    - name: git-tmp
      mountPath: /tmp
{{- end }}
