{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "syncplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "syncplane.fullname" -}}
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

{{- define "syncplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object, without the component. */}}
{{- define "syncplane.commonLabels" -}}
helm.sh/chart: {{ include "syncplane.chart" . }}
app.kubernetes.io/name: {{ include "syncplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: syncplane
{{- end }}

{{/* Labels of the server's objects. */}}
{{- define "syncplane.labels" -}}
{{ include "syncplane.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels that select the server pods (not the migration Job's); never
change them in an upgrade: a Deployment's selector is immutable. */}}
{{- define "syncplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "syncplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "syncplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "syncplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "syncplane.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The port of a host:port listen address such as ":8080". */}}
{{- define "syncplane.addrPort" -}}
{{- splitList ":" . | last | int }}
{{- end }}

{{- define "syncplane.httpPort" -}}
{{- include "syncplane.addrPort" .Values.config.httpAddr }}
{{- end }}

{{- define "syncplane.metricsPort" -}}
{{- include "syncplane.addrPort" .Values.config.metricsAddr }}
{{- end }}

{{/* Name of the Secret with the secret settings. */}}
{{- define "syncplane.secretName" -}}
{{- .Values.existingSecret | default (include "syncplane.fullname" .) }}
{{- end }}

{{/* Environment from the secret settings. Takes (dict "ctx" $ "name"
secretName "session" bool); the migration Job needs no session secret. */}}
{{- define "syncplane.secretEnv" -}}
{{- $ctx := .ctx }}
{{- $keys := dict "databaseUrl" "SYNCPLANE_DATABASE_URL" "clusters" "SYNCPLANE_CLUSTERS" "sessionSecret" "SYNCPLANE_SESSION_SECRET" "sealKeys" "SYNCPLANE_SEAL_KEYS" }}
{{- if $ctx.Values.existingSecret }}
{{- $keys = $ctx.Values.existingSecretKeys }}
{{- end }}
- name: SYNCPLANE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ $keys.databaseUrl }}
{{- if $keys.clusters }}
- name: SYNCPLANE_CLUSTERS
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ $keys.clusters }}
      optional: true
{{- end }}
{{- if and .session $keys.sessionSecret }}
- name: SYNCPLANE_SESSION_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ $keys.sessionSecret }}
      optional: true
{{- end }}
{{- if and .session $keys.sealKeys }}
- name: SYNCPLANE_SEAL_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ $keys.sealKeys }}
      optional: true
{{- end }}
{{- end }}

{{/* Topology spread constraints, selecting the server pods: the configured
ones, or by default over nodes and zones, best effort. */}}
{{- define "syncplane.topologySpread" -}}
{{- $constraints := .Values.topologySpreadConstraints }}
{{- if not $constraints }}
{{- $constraints = list (dict "maxSkew" 1 "topologyKey" "kubernetes.io/hostname" "whenUnsatisfiable" "ScheduleAnyway") (dict "maxSkew" 1 "topologyKey" "topology.kubernetes.io/zone" "whenUnsatisfiable" "ScheduleAnyway") }}
{{- end }}
{{- $out := list }}
{{- range $constraints }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "syncplane.selectorLabels" $ | fromYaml)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}
