package deploycheck

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// noHealthcheck lists the services that cannot have a Docker health check,
// and why. Services depending on them must use service_started.
var noHealthcheck = map[string]string{
	"otel-collector": "the contrib image is distroless: no shell or HTTP client to probe with",
}

// receiverProfile is the compose profile that adds the Collector with the
// pgmq receiver.
const receiverProfile = "receiver"

// loadCompose parses docker-compose.yml with the compose-spec loader (the
// library docker compose itself uses), resolving relative paths, with the
// given profiles enabled.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithName("pgmqotel"),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

// pinned reports why an image reference is not pinned to a version, or "".
// A digest pins; otherwise the reference needs a tag other than latest.
func pinned(ref string) string {
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	name := ref[strings.LastIndex(ref, "/")+1:] // a registry port is not a tag
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return "has no tag"
	case tag == "latest":
		return "uses latest"
	}
	return ""
}

// serviceNames lists a project's enabled services, sorted.
func serviceNames(p *types.Project) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for name := range p.Services {
			if !yield(name) {
				return
			}
		}
	})
}

func TestComposeServices(t *testing.T) {
	want := []string{"grafana", "jaeger", "orchestrator", "otel-collector", "postgres", "prometheus"}
	if got := serviceNames(loadCompose(t)); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	// The receiver profile adds pgmq-receiver; every check below covers it.
	p := loadCompose(t, receiverProfile)
	want = append(want, "pgmq-receiver")
	slices.Sort(want)
	if got := serviceNames(p); !slices.Equal(got, want) {
		t.Fatalf("services with the %s profile %v, want %v", receiverProfile, got, want)
	}

	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			// Image pinned, or built from the repository with pinned bases.
			switch {
			case s.Build != nil:
				dockerfile := s.Build.Dockerfile
				if !filepath.IsAbs(dockerfile) {
					dockerfile = filepath.Join(s.Build.Context, dockerfile)
				}
				checkDockerfile(t, dockerfile)
			case s.Image == "":
				t.Error("neither image nor build")
			default:
				if why := pinned(s.Image); why != "" {
					t.Errorf("image %s %s", s.Image, why)
				}
			}

			// Health check, unless documented as impossible.
			_, exempt := noHealthcheck[name]
			hc := s.HealthCheck
			switch {
			case exempt && hc != nil:
				t.Errorf("has a health check but is listed in noHealthcheck")
			case !exempt && (hc == nil || hc.Disable || len(hc.Test) == 0):
				t.Errorf("no health check")
			case !exempt && (hc.Interval == nil || hc.Retries == nil):
				t.Errorf("health check without interval or retries")
			}

			// Dependencies wait for health where the dependency has a check.
			for dep, cfg := range s.DependsOn {
				want := types.ServiceConditionHealthy
				if _, ok := noHealthcheck[dep]; ok {
					want = types.ServiceConditionStarted
				}
				if cfg.Condition != want {
					t.Errorf("depends_on %s: condition %q, want %q", dep, cfg.Condition, want)
				}
			}

			// Every bind mount comes from a file or directory of the repository.
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("mount %s -> %s: %v", v.Source, v.Target, err)
				}
				if !v.ReadOnly {
					t.Errorf("mount %s -> %s is writable; configuration mounts should be read-only", v.Source, v.Target)
				}
			}
		})
	}
}

// TestComposeWiring checks what the services must agree on, across files.
func TestComposeWiring(t *testing.T) {
	p := loadCompose(t, receiverProfile)
	root := repoRoot(t)

	deps := map[string][]string{}
	for name, s := range p.Services {
		for dep := range s.DependsOn {
			deps[name] = append(deps[name], dep)
		}
		slices.Sort(deps[name])
	}
	wantDeps := map[string][]string{
		"orchestrator":   {"otel-collector", "postgres"},
		"otel-collector": {"jaeger"},
		"prometheus":     {"otel-collector"},
		"grafana":        {"prometheus"},
		"pgmq-receiver":  {"otel-collector", "postgres"},
	}
	for name, want := range wantDeps {
		if !slices.Equal(deps[name], want) {
			t.Errorf("%s depends on %v, want %v", name, deps[name], want)
		}
	}

	// The collector runs the repository's configuration.
	col := p.Services["otel-collector"]
	if !slices.Contains(col.Command, "--config=/etc/otelcol-contrib/config.yaml") ||
		!mounts(col, filepath.Join(root, "collector-config.yaml"), "/etc/otelcol-contrib/config.yaml") {
		t.Errorf("otel-collector does not run the mounted collector-config.yaml: command %v", col.Command)
	}

	// The receiver's Collector runs the shipped configuration with the
	// receiver's file merged on top, samples the compose database and sends
	// the queue metrics to otel-collector by OTLP (TestCollectorConfigsValidate
	// validates this very command line).
	rcv := p.Services["pgmq-receiver"]
	if !slices.Equal(rcv.Command, composeReceiverArgs) ||
		!mounts(rcv, filepath.Join(root, "collector-config.yaml"), "/etc/otelcol/config.yaml") ||
		!mounts(rcv, filepath.Join(root, "collector", "pgmq-receiver.yaml"), "/etc/otelcol/pgmq-receiver.yaml") {
		t.Errorf("pgmq-receiver does not run the mounted configurations: command %v", rcv.Command)
	}
	if rcv.Build == nil || rcv.Build.Context != root || rcv.Build.Dockerfile != "e2e/cmd/otelcol/Dockerfile" {
		t.Errorf("pgmq-receiver is not built from e2e/cmd/otelcol/Dockerfile at the repository root: %+v", rcv.Build)
	}
	if !slices.Equal(rcv.Profiles, []string{receiverProfile}) {
		t.Errorf("pgmq-receiver profiles %v, want [%s]", rcv.Profiles, receiverProfile)
	}
	for k, want := range composeReceiverEnv {
		if got := rcv.Environment[k]; got == nil || *got != want {
			t.Errorf("pgmq-receiver %s = %v, want %q", k, got, want)
		}
	}
	if dsn := *rcv.Environment["PGMQ_DATABASE_URL"]; dsn != *p.Services["orchestrator"].Environment["DATABASE_URL"] {
		t.Errorf("pgmq-receiver samples %s, the orchestrator uses %s", dsn, *p.Services["orchestrator"].Environment["DATABASE_URL"])
	}

	// The orchestrator talks to the collector and the database as documented.
	orch := p.Services["orchestrator"]
	for k, want := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317",
		"OTEL_EXPORTER_OTLP_INSECURE": "true",
		"OTEL_SERVICE_NAME":           "orchestrator",
		"OTEL_METRIC_EXPORT_INTERVAL": "5000",
		"DATABASE_URL":                "postgres://postgres:postgres@postgres:5432/postgres?sslmode=disable",
	} {
		if got := orch.Environment[k]; got == nil || *got != want {
			t.Errorf("orchestrator %s = %v, want %q", k, got, want)
		}
	}
	wantCmd := []string{"-processors", "4", "-rate", "5", "-work", "500ms", "-health-addr", "0.0.0.0:8080"}
	if !slices.Equal(orch.Command, wantCmd) {
		t.Errorf("orchestrator command %v, want %v", orch.Command, wantCmd)
	}
	if orch.Build == nil || orch.Build.Context != root {
		t.Errorf("orchestrator is not built from the repository root: %+v", orch.Build)
	}

	// Prometheus loads the shipped config and the rule file it names.
	prom := p.Services["prometheus"]
	if !mounts(prom, filepath.Join(root, "deploy", "prometheus", "prometheus.yml"), "/etc/prometheus/prometheus.yml") ||
		!mounts(prom, filepath.Join(root, "deploy", "prometheus", "alerts.yml"), "/etc/prometheus/alerts.yml") {
		t.Error("prometheus does not mount prometheus.yml and alerts.yml where the config expects them")
	}
	promCfg, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"/etc/prometheus/alerts.yml", "otel-collector:8889", "otel-collector:8888"} {
		if !strings.Contains(string(promCfg), s) {
			t.Errorf("prometheus.yml does not mention %s", s)
		}
	}

	// Grafana's providers point at the mounted directories.
	graf := p.Services["grafana"]
	g := filepath.Join(root, "deploy", "grafana")
	if !mounts(graf, filepath.Join(g, "provisioning", "datasources"), "/etc/grafana/provisioning/datasources") ||
		!mounts(graf, filepath.Join(g, "provisioning", "dashboards"), "/etc/grafana/provisioning/dashboards") ||
		!mounts(graf, filepath.Join(g, "dashboards"), "/etc/grafana/dashboards") {
		t.Error("grafana does not mount the provisioning and dashboard directories")
	}
	provider, err := os.ReadFile(filepath.Join(g, "provisioning", "dashboards", "pgmqotel.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(provider), "path: /etc/grafana/dashboards") {
		t.Error("dashboard provider does not read /etc/grafana/dashboards")
	}
	home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if home == nil || *home != "/etc/grafana/dashboards/pgmq-orchestrator.json" {
		t.Errorf("grafana home dashboard %v", home)
	}
	for k, want := range map[string]string{"GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Admin", "GF_AUTH_DISABLE_LOGIN_FORM": "true"} {
		if got := graf.Environment[k]; got == nil || *got != want {
			t.Errorf("grafana %s = %v, want %q", k, got, want)
		}
	}

	// Published ports of what the README tells people to open.
	for svc, port := range map[string]string{"grafana": "3000", "prometheus": "9090", "jaeger": "16686", "orchestrator": "8080", "otel-collector": "4317"} {
		if !slices.ContainsFunc(p.Services[svc].Ports, func(pc types.ServicePortConfig) bool { return pc.Published == port }) {
			t.Errorf("%s does not publish port %s", svc, port)
		}
	}
}

// composeReceiverArgs and composeReceiverEnv are the pgmq-receiver
// service's command line and environment.
var (
	composeReceiverArgs = []string{
		"--config=/etc/otelcol/config.yaml",
		"--config=/etc/otelcol/pgmq-receiver.yaml",
		"--config=yaml:service::pipelines::metrics/pgmq::exporters: [otlp_grpc/backend]",
	}
	composeReceiverEnv = map[string]string{
		"PGMQ_DATABASE_URL":        "postgres://postgres:postgres@postgres:5432/postgres?sslmode=disable",
		"PGMQ_COLLECTION_INTERVAL": "5s",
		"OTLP_BACKEND_ENDPOINT":    "otel-collector:4317",
	}
)

// mounts reports whether s bind-mounts source at target.
func mounts(s types.ServiceConfig, source, target string) bool {
	return slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeBind && v.Source == source && v.Target == target
	})
}

var fromLine = regexp.MustCompile(`(?i)^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?`)

// checkDockerfile requires every base image of a Dockerfile to be pinned
// (stage names are not images).
func checkDockerfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("dockerfile: %v", err)
		return
	}
	defer f.Close()
	stages := map[string]bool{}
	bases := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := fromLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if !stages[strings.ToLower(m[1])] {
			bases++
			if why := pinned(m[1]); why != "" {
				t.Errorf("%s: base image %s %s", path, m[1], why)
			}
		}
		if m[2] != "" {
			stages[strings.ToLower(m[2])] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Error(err)
	}
	if bases == 0 {
		t.Errorf("%s: no FROM line", path)
	}
}

func TestPinned(t *testing.T) {
	for ref, want := range map[string]string{
		"prom/prometheus:v2.55.1":          "",
		"ghcr.io/pgmq/pg17-pgmq:v1.13.0":   "",
		"localhost:5000/app:1.2":           "",
		"alpine@sha256:0123456789abcdef":   "",
		"prom/prometheus":                  "has no tag",
		"localhost:5000/app":               "has no tag",
		"grafana/grafana:latest":           "uses latest",
		"otel/opentelemetry-collector:":    "has no tag",
		"registry.example:443/team/img:v3": "",
	} {
		if got := pinned(ref); got != want {
			t.Errorf("pinned(%q) = %q, want %q", ref, got, want)
		}
	}
}
