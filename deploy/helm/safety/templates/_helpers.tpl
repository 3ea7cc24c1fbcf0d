{{/* Labels every object carries; component names the process. */}}
{{- define "safety.labels" -}}
app.kubernetes.io/name: safety
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The settings every process reads: the ConfigMap and the Secret, as environment variables. */}}
{{- define "safety.envFrom" -}}
- configMapRef:
    name: {{ .Release.Name }}-env
- secretRef:
    name: {{ if .Values.existingSecret }}{{ .Values.existingSecret }}{{ else }}{{ .Release.Name }}-secret{{ end }}
{{- end }}

{{- define "safety.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}
