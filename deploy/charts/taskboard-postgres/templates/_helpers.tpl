{{- define "pg.labels" -}}
app.kubernetes.io/name: {{ .Values.infra.postgres.cluster }}
app.kubernetes.io/component: database
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The object store's settings (destinationPath, endpointURL, credentials), as in a
barmanObjectStore: of postgres.backup, or of the backups postgres.restore reads.
*/}}
{{- define "pg.objectStore" -}}
{{- $b := .root.Values.postgres.backup -}}
destinationPath: {{ .destinationPath | quote }}
{{- with .endpointURL }}
endpointURL: {{ . | quote }}
{{- end }}
{{- with .serverName }}
serverName: {{ . | quote }}
{{- end }}
s3Credentials:
  {{- if $b.secretName }}
  accessKeyId:
    name: {{ $b.secretName }}
    key: ACCESS_KEY_ID
  secretAccessKey:
    name: {{ $b.secretName }}
    key: ACCESS_SECRET_KEY
  {{- else }}
  inheritFromIAMRole: true
  {{- end }}
{{- end -}}

{{/* postgres.backup.destinationPath, required when backups are on. */}}
{{- define "pg.backupDestination" -}}
{{- required "postgres.backup.enabled needs postgres.backup.destinationPath (s3://<bucket>/<path>; helmfile sets it from TASKBOARD_BACKUP_DESTINATION)" .Values.postgres.backup.destinationPath -}}
{{- end -}}
