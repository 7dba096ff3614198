{{/* The name of every object: the release's, with "berth" unless it has it. */}}
{{- define "berth.fullname" -}}
{{- if contains "berth" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-berth" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: berth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "berth.labels" -}}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ include "berth.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{- define "berth.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag | replace "+" "_" -}}
{{- end -}}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart generates the secret key and owner token into. */}}
{{- define "berth.generatedSecret" -}}
{{- printf "%s-generated" (include "berth.fullname" .) -}}
{{- end -}}

{{- define "berth.secretKeySecret" -}}
{{- default (include "berth.generatedSecret" .) .Values.secretKey.existingSecret -}}
{{- end -}}

{{- define "berth.ownerTokenSecret" -}}
{{- default (include "berth.generatedSecret" .) .Values.ownerToken.existingSecret -}}
{{- end -}}
