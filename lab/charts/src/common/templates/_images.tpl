{{/*
A library of our own for the reconcile lab: the Karmada chart depends on a "common" library chart
that cannot be fetched here, and its templates call only these two helpers.
*/}}

{{/*
common.images.image renders an image reference from imageRoot {registry, repository, tag, digest}.
global.imageRegistry, when set, replaces the image's own registry; a digest wins over a tag.
Usage: {{ include "common.images.image" (dict "imageRoot" .Values.x.image "global" .Values.global) }}
*/}}
{{- define "common.images.image" -}}
{{- $global := .global | default dict -}}
{{- $registry := .imageRoot.registry | default "" -}}
{{- if $global.imageRegistry -}}
{{- $registry = $global.imageRegistry -}}
{{- end -}}
{{- $ref := .imageRoot.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" $registry $ref -}}
{{- end -}}
{{- if .imageRoot.digest -}}
{{- printf "%s@%s" $ref (toString .imageRoot.digest) -}}
{{- else if .imageRoot.tag -}}
{{- printf "%s:%s" $ref (toString .imageRoot.tag) -}}
{{- else -}}
{{- $ref -}}
{{- end -}}
{{- end -}}

{{/*
common.images.pullSecrets renders imagePullSecrets from global.imagePullSecrets and every image's
pullSecrets (entries are names or {name: ...}), without duplicates; nothing when there are none.
Usage: {{ include "common.images.pullSecrets" (dict "images" (list .Values.x.image) "global" .Values.global) }}
*/}}
{{- define "common.images.pullSecrets" -}}
{{- $global := .global | default dict -}}
{{- $secrets := list -}}
{{- range ($global.imagePullSecrets | default list) -}}
{{- $secrets = append $secrets . -}}
{{- end -}}
{{- range (.images | default list) -}}
{{- range ((. | default dict).pullSecrets | default list) -}}
{{- $secrets = append $secrets . -}}
{{- end -}}
{{- end -}}
{{- $names := list -}}
{{- range $secrets -}}
{{- $name := . -}}
{{- if kindIs "map" . -}}
{{- $name = .name -}}
{{- end -}}
{{- if $name -}}
{{- $names = append $names (toString $name) -}}
{{- end -}}
{{- end -}}
{{- if $names }}
imagePullSecrets:
{{- range ($names | uniq) }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
