{{- define "platform.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: taskboard
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "platform.image" -}}
{{- if .registry -}}
{{ .registry }}/{{ .repository }}:{{ .tag }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}

{{/*
A Secret value: the one in values, else the one already in the cluster (kept across
upgrades), else a new one from .generate. Returns it base64-encoded.
*/}}
{{- define "platform.secretValue" -}}
{{- if .spec.value -}}
{{- .spec.value | b64enc -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .spec.name -}}
{{- if and $existing (hasKey (default dict $existing.data) .spec.key) -}}
{{- index $existing.data .spec.key -}}
{{- else -}}
{{- .generate | b64enc -}}
{{- end -}}
{{- end -}}
{{- end -}}
