package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Every split role serves /healthz, /readyz (with its own checks) and
// /metrics labelled with its role and region on its http-addr.
func TestEveryRoleServesHealthReadinessAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newSplitEnv(t, ctx)
	addrs := map[string]string{"bridge": freeAddr(t), "consumer": freeAddr(t), "control": freeAddr(t)}
	checks := map[string][]string{
		"bridge":   {"nats: ok", "xqueue: ok"},
		"consumer": {"nats: ok", "signing-key: ok", "storage: ok"},
		"control":  {"nats: ok"},
	}
	startProc(t, "bridge", []string{"CERTD_XQUEUE_PASSWORD=" + splitXQueuePassword}, append([]string{"bridge", "--region", "us-east",
		"--xqueue-url", e.xs.URL(), "--xqueue-user", splitXQueueUser, "--http-addr", addrs["bridge"]}, e.common...)...)
	startProc(t, "consumer", nil, append([]string{"consumer", "--region", "us-east", "--storage", "file://" + e.www,
		"--signing-key", e.key, "--credential-key", e.credKey, "--download-url", downloadBase, "--http-addr", addrs["consumer"]}, e.common...)...)
	startProc(t, "control", nil, append([]string{"control", "--region", "us-east", "--grpc-addr", freeAddr(t), "--http-addr", addrs["control"]}, e.common...)...)

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for role, addr := range addrs {
		var code int
		var body string
		for code != http.StatusOK {
			code, body = httpGet(ctx, "http://"+addr+"/readyz")
			if code == http.StatusOK {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never ready: %d %q", role, code, body)
			case <-tick.C: // the process announces readiness only here
			}
		}
		for _, c := range checks[role] {
			if !strings.Contains(body, c) {
				t.Errorf("%s /readyz %q lacks %q", role, body, c)
			}
		}
		if code, _ := httpGet(ctx, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz: %d", role, code)
		}
		_, m := httpGet(ctx, "http://"+addr+"/metrics")
		if want := `certd_build_info{region="us-east",role="` + role + `"`; !strings.Contains(m, want) {
			t.Errorf("%s /metrics lacks %s", role, want)
		}
	}
}

func httpGet(ctx context.Context, url string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
