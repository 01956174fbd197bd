package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNameTableCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"table": {"x.example": {"ips": ["10.0.0.300"]}}}`), 0o644)
	if code := run([]string{"nametable", "check", "--namespace", "ns1", good}); code != 0 {
		t.Errorf("good table: exit %d", code)
	}
	if code := run([]string{"nametable", "check", bad}); code != 1 {
		t.Errorf("bad table: exit %d, want 1", code)
	}
	if code := run([]string{"nametable", "check", filepath.Join(dir, "absent.json")}); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

func TestUsageErrors(t *testing.T) {
	if code := run(nil); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code := run([]string{"fly"}); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := run([]string{"version"}); code != 0 {
		t.Errorf("version: exit %d", code)
	}
	if code := run([]string{"status", "--addr", "127.0.0.1:1"}); code != 1 {
		t.Errorf("status with no agent: exit %d, want 1", code)
	}
	if code := run([]string{"run", "--config", "/nonexistent/onramp.yaml"}); code != 1 {
		t.Errorf("run with a missing config file: exit %d, want 1", code)
	}
}
