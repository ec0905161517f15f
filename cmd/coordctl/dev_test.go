package main_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coord/conformance/local"
)

func TestDevPrintsURLAndStopsOnSIGTERM(t *testing.T) {
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			p := start(t, nil, "--output", output, "dev", "--listen", "127.0.0.1:0")
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(p.stdout.String(), "\n") {
				if time.Now().After(deadline) {
					t.Fatalf("no ready line; stderr: %s", p.stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			line := strings.TrimSpace(p.stdout.String())
			var ready struct {
				Event, URL, Endpoint string
				DataDir              string `json:"data_dir"`
			}
			if output == "json" {
				if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Event != "ready" {
					t.Fatalf("ready line %q: %v", line, err)
				}
			} else {
				ready.URL = line
				ready.Endpoint = strings.TrimPrefix(line, "etcd://")
			}
			if !strings.HasPrefix(ready.URL, "etcd://127.0.0.1:") || strings.HasSuffix(ready.URL, ":0") || ready.URL != "etcd://"+ready.Endpoint {
				t.Fatalf("ready line %q", line)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := local.EtcdHealthy(ready.Endpoint)(ctx); err != nil {
				t.Fatalf("server not healthy after its ready line: %v", err)
			}

			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			r := p.wait(t, 15*time.Second)
			if r.code != 0 {
				t.Fatalf("exit %d after SIGTERM, want 0\nstderr: %s", r.code, r.stderr)
			}
			if err := local.EtcdHealthy(ready.Endpoint)(ctx); err == nil {
				t.Fatalf("still serving after exit")
			}
			if ready.DataDir != "" {
				if _, err := os.Stat(ready.DataDir); !os.IsNotExist(err) {
					t.Fatalf("temporary data dir %s not removed: %v", ready.DataDir, err)
				}
			}
		})
	}
}

func TestDemo(t *testing.T) {
	r := coordctl(t, nil, "demo")
	if r.code != 0 {
		t.Fatalf("demo exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"acquired", "token", "lost", "stale write", "ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.elapsed > 15*time.Second {
		t.Fatalf("demo took %s", r.elapsed)
	}
}
