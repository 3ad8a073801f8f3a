{{/*
The process this release deploys: processDefaults deep-merged with processes.<process>,
as JSON (templates read it back with fromJson). Numbers come back as float64, as every
Helm value does: templates print them through `int`.
*/}}
{{- define "taskboard.process" -}}
{{- $entry := index .Values.processes .Values.process -}}
{{- if not $entry -}}
{{- fail (printf "process %q has no entry in processes (deploy/environments/default.yaml)" .Values.process) -}}
{{- end -}}
{{- $p := mergeOverwrite (deepCopy .Values.processDefaults) (deepCopy $entry) -}}
{{- if not $p.ports.admin -}}
{{- fail (printf "processes.%s.ports.admin is required (probes and metrics use it)" .Values.process) -}}
{{- end -}}
{{- $_ := set $p "name" .Values.process -}}
{{- toJson $p -}}
{{- end -}}

{{- define "taskboard.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: taskboard
{{- end -}}

{{- define "taskboard.labels" -}}
{{ include "taskboard.selectorLabels" .p }}
app.kubernetes.io/component: {{ if .p.ports.grpc }}service{{ else if .p.ports.http }}edge{{ else }}worker{{ end }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "taskboard.image" -}}
{{- if .registry -}}
{{ .registry }}/{{ .repository }}:{{ .tag }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}

{{/* The gRPC port of a process that another one calls. */}}
{{- define "taskboard.grpcPort" -}}
{{- $callee := index .root.Values.processes .name -}}
{{- if not $callee -}}
{{- fail (printf "process %q calls %q, which has no entry in processes" .caller .name) -}}
{{- end -}}
{{- $port := mergeOverwrite (deepCopy .root.Values.processDefaults.ports) (deepCopy (default dict $callee.ports)) -}}
{{- if not $port.grpc -}}
{{- fail (printf "process %q calls %q, which has no ports.grpc" .caller .name) -}}
{{- end -}}
{{- int $port.grpc -}}
{{- end -}}
