{{/* ---------------------------------------------------------------- names and labels */}}

{{- define "gov.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gov.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>": Deployment, Service, ServiceAccount, HPA, PDB names. Args: root, name */}}
{{- define "gov.componentFullname" -}}
{{- printf "%s-%s" (include "gov.fullname" .root | trunc 40 | trimSuffix "-") .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gov.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels. Args: root, component (label value) */}}
{{- define "gov.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gov.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Common labels. Args: root, component */}}
{{- define "gov.labels" -}}
helm.sh/chart: {{ include "gov.chart" .root }}
{{ include "gov.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "gov.name" .root }}
{{- end -}}

{{/* ---------------------------------------------------------------- component settings */}}

{{/*
Deep merge of two maps without sprig's mergeOverwrite pitfalls: an override of false, 0, "" or []
wins, a null override removes the key, maps merge key by key, everything else is replaced.
Args: base, over. Returns YAML.
*/}}
{{- define "gov.merge" -}}
{{- $out := deepCopy (.base | default dict) -}}
{{- range $k, $v := (.over | default dict) -}}
{{- $cur := get $out $k -}}
{{- if kindIs "invalid" $v -}}
{{- $_ := unset $out $k -}}
{{- else if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- $_ := set $out $k (include "gov.merge" (dict "base" $cur "over" $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* componentDefaults merged with components.<name>, plus name. Args: root, name. Returns YAML. */}}
{{- define "gov.component" -}}
{{- $c := include "gov.merge" (dict "base" .root.Values.componentDefaults "over" (index .root.Values.components .name)) | fromYaml -}}
{{- $_ := set $c "name" .name -}}
{{- if not $c.module -}}
{{- fail (printf "components.%s.module is required (the Python module run as `python -m <module>`)" .name) -}}
{{- end -}}
{{- if and $c.migrations (eq $c.type "http") -}}
{{- fail (printf "components.%s: migrations are only defined for gRPC services" .name) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Sorted names of the enabled components. Args: root. Returns a YAML list. */}}
{{- define "gov.enabledComponents" -}}
{{- $names := list -}}
{{- range $name := keys .root.Values.components | sortAlpha -}}
{{- $c := include "gov.component" (dict "root" $.root "name" $name) | fromYaml -}}
{{- if $c.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toYaml $names -}}
{{- end -}}

{{/* Service port of a component. Args: c */}}
{{- define "gov.servicePort" -}}
{{- if .c.service.port -}}{{ .c.service.port | int }}{{- else -}}{{ .c.port | int }}{{- end -}}
{{- end -}}

{{/* Named port: grpc or http. Args: c */}}
{{- define "gov.portName" -}}
{{- if eq .c.type "http" -}}http{{- else -}}grpc{{- end -}}
{{- end -}}

{{/* Image reference. Args: root, c */}}
{{- define "gov.image" -}}
{{- $g := .root.Values.global.image -}}
{{- $o := .c.image | default dict -}}
{{- $repo := $o.repository | default $g.repository -}}
{{- $digest := $o.digest | default $g.digest -}}
{{- $tag := $o.tag | default $g.tag | default .root.Chart.AppVersion -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end -}}
{{- end -}}

{{- define "gov.pullPolicy" -}}
{{- $o := .c.image | default dict -}}
{{- $o.pullPolicy | default .root.Values.global.image.pullPolicy -}}
{{- end -}}

{{/* ServiceAccount name of the long-running pods. Args: root, c */}}
{{- define "gov.serviceAccountName" -}}
{{- if .c.serviceAccount.create -}}
{{- .c.serviceAccount.name | default (include "gov.componentFullname" (dict "root" .root "name" .c.name)) -}}
{{- else -}}
{{- .c.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* An env value as a string; whole numbers never come out in exponent form. */}}
{{- define "gov.envValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq . (float64 (int64 .)) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
Container env. Computed: GOV_GRPC_PORT or GOV_HTTP_HOST/GOV_HTTP_PORT, GOV_<OTHER>_ADDR for every
other enabled gRPC component, GOV_NATS_URL, OTEL_*. Precedence: component env > global env >
computed values. Secret env (global secretEnv, then component secretEnv) always comes from a
secretKeyRef and removes a plain value of the same name. Args: root, c
*/}}
{{- define "gov.env" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $v := $root.Values -}}
{{- $computed := dict -}}
{{- if eq $c.type "http" -}}
{{- $_ := set $computed "GOV_HTTP_HOST" "0.0.0.0" -}}
{{- $_ := set $computed "GOV_HTTP_PORT" (toString ($c.port | int)) -}}
{{- else -}}
{{- $_ := set $computed "GOV_GRPC_PORT" (toString ($c.port | int)) -}}
{{- end -}}
{{- if and (eq $c.type "grpc") (not .job) -}}
{{- $_ := set $computed "GOV_GRPC_MAX_CONNECTION_AGE_SECONDS" (toString ($v.global.grpc.maxConnectionAgeSeconds | int)) -}}
{{- end -}}
{{- if and $v.metrics.enabled (not .job) -}}
{{- $_ := set $computed "GOV_METRICS_PORT" (toString ($v.metrics.port | int)) -}}
{{- end -}}
{{/* GOV_<NAME>_ADDR of every enabled gRPC component, e.g. GOV_IDENTITY_ADDR=dns:///<release>-gov-platform-identity-headless:50051 */}}
{{- range $other := include "gov.enabledComponents" (dict "root" $root) | fromYamlArray -}}
{{- $oc := include "gov.component" (dict "root" $root "name" $other) | fromYaml -}}
{{- /* not a component's own address: an empty GOV_IDENTITY_ADDR is how identity knows it signs itself */ -}}
{{- if and (eq $oc.type "grpc") (ne $other $c.name) -}}
{{- $key := printf "GOV_%s_ADDR" ($other | upper | replace "-" "_") -}}
{{- $_ := set $computed $key (include "gov.grpcAddr" (dict "root" $root "c" $oc)) -}}
{{- end -}}
{{- end -}}
{{- $tls := $v.tls -}}
{{- if and $tls.grpc.enabled (not .job) -}}
{{- $_ := set $computed "GOV_TLS_GRPC_CERT_FILE" "/etc/gov/tls/grpc/tls.crt" -}}
{{- $_ := set $computed "GOV_TLS_GRPC_KEY_FILE" "/etc/gov/tls/grpc/tls.key" -}}
{{- $_ := set $computed "GOV_TLS_GRPC_CA_FILE" "/etc/gov/tls/grpc/ca.crt" -}}
{{- if eq $c.type "grpc" -}}
{{- /* Kubelet's gRPC probes speak plaintext: the runtime answers health alone on this port. */ -}}
{{- $_ := set $computed "GOV_GRPC_HEALTH_PORT" (toString (add ($c.port | int) 1000)) -}}
{{- end -}}
{{- end -}}
{{- if $tls.postgres.enabled -}}
{{- $_ := set $computed "GOV_TLS_POSTGRES_CA_FILE" "/etc/gov/tls/postgres/ca.crt" -}}
{{- end -}}
{{- if $tls.nats.enabled -}}
{{- $_ := set $computed "GOV_TLS_NATS_CA_FILE" "/etc/gov/tls/nats/ca.crt" -}}
{{- end -}}
{{- if not $v.global.nats.existingSecret.name -}}
{{- if not $v.global.nats.url -}}
{{- fail "global.nats.url or global.nats.existingSecret.name is required" -}}
{{- end -}}
{{- $_ := set $computed "GOV_NATS_URL" $v.global.nats.url -}}
{{- end -}}
{{- $_ := set $computed "OTEL_SERVICE_NAME" ($c.otelServiceName | default (printf "gov-%s" $c.name)) -}}
{{- $_ := set $computed "OTEL_RESOURCE_ATTRIBUTES" (printf "service.namespace=%s,service.version=%s,k8s.namespace.name=$(K8S_NAMESPACE),k8s.pod.name=$(K8S_POD_NAME),k8s.node.name=$(K8S_NODE_NAME)" $v.global.otel.serviceNamespace $root.Chart.AppVersion) -}}
{{- if $v.global.otel.enabled -}}
{{- $_ := set $computed "OTEL_SDK_DISABLED" "false" -}}
{{- $_ := set $computed "OTEL_TRACES_EXPORTER" "otlp" -}}
{{- if $v.global.otel.endpoint -}}
{{- $_ := set $computed "OTEL_EXPORTER_OTLP_ENDPOINT" $v.global.otel.endpoint -}}
{{- end -}}
{{- else -}}
{{- $_ := set $computed "OTEL_SDK_DISABLED" "true" -}}
{{- $_ := set $computed "OTEL_TRACES_EXPORTER" "none" -}}
{{- end -}}
{{- $plain := merge (dict) ($c.env | default dict) ($v.global.env | default dict) $computed -}}
{{/* Secret env: NAME -> {name, key} */}}
{{- $secrets := dict -}}
{{- if $v.global.nats.existingSecret.name -}}
{{- $_ := set $secrets "GOV_NATS_URL" (dict "name" $v.global.nats.existingSecret.name "key" $v.global.nats.existingSecret.key) -}}
{{- end -}}
{{- range $name, $ref := ($v.global.secretEnv | default dict) -}}
{{- $_ := set $secrets $name (dict "name" $ref.name "key" $ref.key) -}}
{{- end -}}
{{- $defaultSecret := $c.existingSecret | default (include "gov.componentFullname" (dict "root" $root "name" $c.name)) -}}
{{- range $name, $ref := ($c.secretEnv | default dict) -}}
{{- if kindIs "map" $ref -}}
{{- $_ := set $secrets $name (dict "name" ($ref.name | default $defaultSecret) "key" $ref.key) -}}
{{- else -}}
{{- $_ := set $secrets $name (dict "name" $defaultSecret "key" $ref) -}}
{{- end -}}
{{- end -}}
{{- /* CloudNativePG: the role's basic-auth Secret gives user and password; GOV_DATABASE_URL is
composed by Kubernetes' $(VAR) expansion, so the credentials never appear in the manifest. */ -}}
{{- $cnpgUrl := "" -}}
{{- if and $v.cloudnativepg.enabled (include "gov.usesDatabase" (dict "c" $c)) -}}
{{- $cluster := include "gov.cnpgCluster" $root -}}
{{- $_ := unset $secrets "GOV_DATABASE_URL" -}}
{{- $_ := unset $plain "GOV_DATABASE_URL" -}}
{{- $_ := set $secrets "GOV_DB_USERNAME" (dict "name" (printf "%s-%s" $cluster $c.name) "key" "username") -}}
{{- $_ := set $secrets "GOV_DB_PASSWORD" (dict "name" (printf "%s-%s" $cluster $c.name) "key" "password") -}}
{{- $cnpgUrl = printf "%s://$(GOV_DB_USERNAME):$(GOV_DB_PASSWORD)@%s-rw.%s.svc:5432/%s" $v.cloudnativepg.driver $cluster $root.Release.Namespace (include "gov.dbName" $c.name) -}}
{{- with $v.cloudnativepg.urlQuery }}{{ $cnpgUrl = printf "%s?%s" $cnpgUrl . }}{{ end -}}
{{- end -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- range $name := keys $plain | sortAlpha }}
{{- if not (hasKey $secrets $name) }}
- name: {{ $name }}
  value: {{ include "gov.envValue" (get $plain $name) | quote }}
{{- end }}
{{- end }}
{{- range $name := keys $secrets | sortAlpha }}
{{- $ref := get $secrets $name }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- if $cnpgUrl }}
{{- /* after the variables it references: $(VAR) only expands names defined earlier */}}
- name: GOV_DATABASE_URL
  value: {{ $cnpgUrl | quote }}
{{- end }}
{{- end -}}

{{/* Client address of a gRPC component. Args: root, c */}}
{{- define "gov.grpcAddr" -}}
{{- if .root.Values.global.grpc.headless -}}
{{- /* headless: DNS answers pod IPs, so the container port, not the Service port */ -}}
dns:///{{ include "gov.componentFullname" (dict "root" .root "name" (printf "%s-headless" .c.name)) }}:{{ .c.port | int }}
{{- else -}}
{{ include "gov.componentFullname" (dict "root" .root "name" .c.name) }}:{{ include "gov.servicePort" (dict "c" .c) }}
{{- end -}}
{{- end -}}

{{/* "true" when the component has a database (GOV_DATABASE_URL in its secretEnv), else "". Args: c */}}
{{- define "gov.usesDatabase" -}}
{{- if hasKey (.c.secretEnv | default dict) "GOV_DATABASE_URL" -}}true{{- end -}}
{{- end -}}

{{/* CloudNativePG Cluster name. Args: root */}}
{{- define "gov.cnpgCluster" -}}
{{- .Values.cloudnativepg.clusterName | default (printf "%s-pg" (include "gov.fullname" . | trunc 40 | trimSuffix "-")) -}}
{{- end -}}

{{/* Database and role name of a component: PostgreSQL identifiers without dashes. Arg: name */}}
{{- define "gov.dbName" -}}
{{- . | replace "-" "_" -}}
{{- end -}}

{{/* Labels every pod of the release carries (NetworkPolicy default-deny selects them). Args: root */}}
{{- define "gov.releaseSelector" -}}
app.kubernetes.io/name: {{ include "gov.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Secrets a component needs, as "secret/key" strings (for NOTES). Args: root, c */}}
{{- define "gov.secretRefs" -}}
{{- $defaultSecret := .c.existingSecret | default (include "gov.componentFullname" (dict "root" .root "name" .c.name)) -}}
{{- $out := list -}}
{{- $cnpg := and .root.Values.cloudnativepg.enabled (include "gov.usesDatabase" (dict "c" .c)) -}}
{{- if $cnpg -}}
{{- $out = append $out (printf "GOV_DATABASE_URL: from secret %s-%s keys username, password (CloudNativePG role)" (include "gov.cnpgCluster" .root) .c.name) -}}
{{- end -}}
{{- range $name, $ref := (.c.secretEnv | default dict) -}}
{{- if and $cnpg (eq $name "GOV_DATABASE_URL") -}}
{{- else if kindIs "map" $ref -}}
{{- $out = append $out (printf "%s: secret %s key %s" $name ($ref.name | default $defaultSecret) $ref.key) -}}
{{- else -}}
{{- $out = append $out (printf "%s: secret %s key %s" $name $defaultSecret $ref) -}}
{{- end -}}
{{- end -}}
{{- toYaml (sortAlpha $out) -}}
{{- end -}}

{{/*
Pod spec shared by the Deployment, the hook Jobs and the test Pod. Args: root, c, job (bool; also
for the test Pod), and for Jobs other than migrations: containerName, command (list), args (list),
extraEnv (list of EnvVar), extraVolumes, extraMounts.
*/}}
{{- define "gov.podSpec" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $portName := include "gov.portName" (dict "c" $c) -}}
{{- if .job }}
{{- /* Pre-install hooks run before the chart's ServiceAccounts exist: use an existing one only. */}}
{{- if and (not $c.serviceAccount.create) $c.serviceAccount.name }}
serviceAccountName: {{ $c.serviceAccount.name }}
{{- end }}
restartPolicy: Never
{{- else }}
serviceAccountName: {{ include "gov.serviceAccountName" (dict "root" $root "c" $c) }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds | int }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $c.podSecurityContext | nindent 2 }}
containers:
  - name: {{ if .job }}{{ .containerName | default "migrate" }}{{ else }}{{ $c.name }}{{ end }}
    image: {{ include "gov.image" (dict "root" $root "c" $c) | quote }}
    imagePullPolicy: {{ include "gov.pullPolicy" (dict "root" $root "c" $c) }}
    {{- with .command }}
    command:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if .args }}
    args:
      {{- toYaml .args | nindent 6 }}
    {{- else if .job }}
    args: [{{ $c.module | quote }}, "migrate"]
    {{- else }}
    args:
      {{- toYaml (prepend ($c.args | default list) $c.module) | nindent 6 }}
    {{- end }}
    {{- if not .job }}
    ports:
      - name: {{ $portName }}
        containerPort: {{ $c.port | int }}
        protocol: TCP
      {{- if and (eq $c.type "grpc") $root.Values.tls.grpc.enabled }}
      - name: grpc-health
        containerPort: {{ add ($c.port | int) 1000 }}
        protocol: TCP
      {{- end }}
      {{- if $root.Values.metrics.enabled }}
      - name: metrics
        containerPort: {{ $root.Values.metrics.port | int }}
        protocol: TCP
      {{- end }}
    {{- if eq $c.type "http" }}
    startupProbe:
      httpGet:
        path: {{ $c.httpProbePaths.liveness }}
        port: {{ $portName }}
      {{- toYaml $c.probes.startup | nindent 6 }}
    livenessProbe:
      httpGet:
        path: {{ $c.httpProbePaths.liveness }}
        port: {{ $portName }}
      {{- toYaml $c.probes.liveness | nindent 6 }}
    readinessProbe:
      httpGet:
        path: {{ $c.httpProbePaths.readiness }}
        port: {{ $portName }}
      {{- toYaml $c.probes.readiness | nindent 6 }}
    {{- else }}
    {{- /* Liveness/startup must not fail while a dependency is down: see grpcProbes in values.yaml. */}}
    {{- /* With TLS on the service port, probes go to the plaintext health port (GOV_GRPC_HEALTH_PORT). */}}
    {{- $probePort := ternary (add ($c.port | int) 1000) ($c.port | int) $root.Values.tls.grpc.enabled }}
    {{- range $probe := list "startup" "liveness" }}
    {{ $probe }}Probe:
      {{- if eq $c.grpcProbes.liveness "grpc" }}
      grpc:
        port: {{ $probePort }}
        {{- with $c.grpcProbes.livenessService }}
        service: {{ . | quote }}
        {{- end }}
      {{- else }}
      tcpSocket:
        port: {{ $portName }}
      {{- end }}
      {{- toYaml (get $c.probes $probe) | nindent 6 }}
    {{- end }}
    readinessProbe:
      grpc:
        port: {{ $probePort }}
        {{- with $c.grpcProbes.readinessService }}
        service: {{ . | quote }}
        {{- end }}
      {{- toYaml $c.probes.readiness | nindent 6 }}
    {{- end }}
    {{- end }}
    env:
      {{- include "gov.env" (dict "root" $root "c" $c "job" .job "extraEnv" .extraEnv) | nindent 6 }}
    {{- with $c.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- toYaml $c.securityContext | nindent 6 }}
    {{- $tls := $root.Values.tls }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if and $tls.grpc.enabled (not .job) }}
      - name: tls-grpc
        mountPath: /etc/gov/tls/grpc
        readOnly: true
      {{- end }}
      {{- if $tls.postgres.enabled }}
      - name: tls-postgres
        mountPath: /etc/gov/tls/postgres
        readOnly: true
      {{- end }}
      {{- if $tls.nats.enabled }}
      - name: tls-nats
        mountPath: /etc/gov/tls/nats
        readOnly: true
      {{- end }}
      {{- with .extraMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $c.tmpSizeLimit }}
  {{- if and $tls.grpc.enabled (not .job) }}
  - name: tls-grpc
    secret:
      secretName: {{ get $tls.grpc.secretNameOverrides $c.name | default (printf "%s-tls" (include "gov.componentFullname" (dict "root" $root "name" $c.name))) }}
      defaultMode: 0440
  {{- end }}
  {{- if $tls.postgres.enabled }}
  - name: tls-postgres
    secret:
      secretName: {{ $tls.postgres.secretName }}
      defaultMode: 0440
  {{- end }}
  {{- if $tls.nats.enabled }}
  - name: tls-nats
    secret:
      secretName: {{ $tls.nats.secretName }}
      defaultMode: 0440
  {{- end }}
  {{- with .extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A duration of govkit/streams.toml ("30d", "168h", "10m") as a Go duration ("720h"). Arg: string */}}
{{- define "gov.goDuration" -}}
{{- if regexMatch "^[0-9]+d$" . -}}
{{- printf "%dh" (mul (trimSuffix "d" . | int) 24) -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* One NetworkPolicy egress rule. Args: to (peers; [] = any destination), ports */}}
{{- define "gov.egressRule" -}}
- {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{/* Excludes pods an operator made from this release's resources (a CloudNativePG Cluster's
instances may inherit its labels): the release's policies are for the platform's own pods. */}}
{{- define "gov.notOperatorPods" -}}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: NotIn
    values: [postgres]
{{- end -}}
