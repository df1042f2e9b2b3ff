{{- define "k8sbot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "k8sbot.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "k8sbot.labels" -}}
{{ include "k8sbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "k8sbot.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "k8sbot.fullname" .) -}}
{{- end -}}

{{- define "k8sbot.secretName" -}}
{{- .Values.slack.existingSecret | default (include "k8sbot.fullname" .) -}}
{{- end -}}

{{/*
The Kubernetes users and groups the bot may impersonate: exactly what the `permissions` value maps
people to, computed like bot/permissions/rbac.py (`k8sbot permissions rbac`): every group of every
`kubernetes:` mapping of a team or binding, and every mapping's user template filled with every Slack
user the file names (plus impersonation.extraSlackUsers: members of Slack user groups, which only Slack
knows). Output: YAML {users: [...], groups: [...]}, sorted, unique.
*/}}
{{- define "k8sbot.impersonation" -}}
{{- $p := .Values.permissions | default dict -}}
{{- $sources := list -}}
{{- $people := .Values.impersonation.extraSlackUsers | default list -}}
{{- range $name, $team := ($p.teams | default dict) -}}
{{- $sources = append $sources $team -}}
{{- $people = concat $people ((($team.members | default dict).users) | default list) -}}
{{- end -}}
{{- range $binding := ($p.bindings | default list) -}}
{{- $sources = append $sources $binding -}}
{{- $people = concat $people ($binding.users | default list) -}}
{{- end -}}
{{- $users := list -}}
{{- $groups := list -}}
{{- range $src := $sources -}}
{{- with $src.kubernetes -}}
{{- $groups = concat $groups (.groups | default list) -}}
{{- $template := .user -}}
{{- range $person := $people -}}
{{- $users = append $users ($template | replace "{user_id}" $person) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "users" ($users | uniq | sortAlpha) "groups" ($groups | uniq | sortAlpha) | toYaml -}}
{{- end -}}

{{/*
The pod's terminationGracePeriodSeconds: the bot's shutdown bound (config.shutdown_grace_seconds,
20 s by default as in bot/settings.py) plus 10 s, unless the value is set; a set value must exceed
the bound, or the kubelet would kill the bot while it still drains.
*/}}
{{- define "k8sbot.terminationGracePeriodSeconds" -}}
{{- $bound := 20.0 -}}
{{- if hasKey .Values.config "shutdown_grace_seconds" -}}
{{- $bound = float64 .Values.config.shutdown_grace_seconds -}}
{{- end -}}
{{- $set := .Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $set -}}
{{- add (ceil $bound | int) 10 -}}
{{- else if le (float64 $set) $bound -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than config.shutdown_grace_seconds (%v): the bot would be killed while it drains" $set $bound) -}}
{{- else -}}
{{- $set -}}
{{- end -}}
{{- end -}}
