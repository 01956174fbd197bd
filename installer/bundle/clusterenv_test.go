package bundle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseClusterEnv(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"A='x'\n", map[string]string{"A": "x"}},
		{"A=plain\nB=''\n", map[string]string{"A": "plain", "B": ""}},
		{"A='it'\\''s'\n", map[string]string{"A": "it's"}},
		{"A='it'\"'\"'s'\n", map[string]string{"A": "it's"}},
		{"A=\"d \\\"q\\\" \\$x \\\\ \\n\"\n", map[string]string{"A": `d "q" $x \ \n`}},
		{"  # comment\n\nexport A='1'   # trailing\r\nB=2", map[string]string{"A": "1", "B": "2"}},
		{"A='multi\nline'\nB=x\n", map[string]string{"A": "multi\nline", "B": "x"}},
		{"A=a\\ b\n", map[string]string{"A": "a b"}},
		{"A=1\nA=2\n", map[string]string{"A": "2"}},
		{"ISTIO_METAJSON_LABELS='{\"app\":\"x\"}'\n", map[string]string{"ISTIO_METAJSON_LABELS": `{"app":"x"}`}},
		{"exported=1\n", map[string]string{"exported": "1"}},
		{"A=x#notcomment\n", map[string]string{"A": "x#notcomment"}},
	}
	for _, c := range cases {
		lines, err := ParseClusterEnv([]byte(c.in))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		got := map[string]string{}
		for _, l := range lines {
			got[l.Key] = l.Value
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", c.in, k, got[k], v)
			}
		}
	}
}

func TestParseClusterEnvErrors(t *testing.T) {
	cases := []struct {
		in   string
		line int
		msg  string
	}{
		{"A=1\nB\n", 2, "expected KEY='value'"},
		{"A=1\n9A=1\n", 2, "expected KEY='value'"},
		{"A=1\n\nB='x\n\n", 3, "unterminated single quote"},
		{"A=\"x\n", 1, "unterminated double quote"},
		{"A=a b\n", 1, "after the value"},
		{"A=`id`\n", 1, "expansion"},
		{"A=\"$B\"\n", 1, "expansion"},
		{"A=x;rm\n", 1, "operator"},
		{"export\n", 1, "expected"},
	}
	for _, c := range cases {
		_, err := ParseClusterEnv([]byte(c.in))
		e, ok := err.(*Error)
		if !ok {
			t.Errorf("%q: err = %v, want *Error", c.in, err)
			continue
		}
		if e.Line != c.line || !strings.Contains(e.Error(), c.msg) || e.File != FileClusterEnv {
			t.Errorf("%q: %v (line %d), want line %d containing %q", c.in, e, e.Line, c.line, c.msg)
		}
	}
}

// TestClusterEnvRoundTrip formats values that need quoting and checks that
// both this parser and a real shell read them back unchanged.
func TestClusterEnvRoundTrip(t *testing.T) {
	env := map[string]string{
		"A": "it's a 'quoted' value",
		"B": `$HOME "and" \back`,
		"C": "",
		"D": "two\nlines",
		"E": `{"app":"x","v":"1"}`,
	}
	data, err := FormatClusterEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "A='it'\\''s a '\\''quoted'\\'' value'\nB=") {
		t.Errorf("unexpected format:\n%s", data)
	}
	lines, err := ParseClusterEnv(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if env[l.Key] != l.Value {
			t.Errorf("%s = %q, want %q", l.Key, l.Value, env[l.Key])
		}
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to cross-check quoting")
	}
	p := filepath.Join(t.TempDir(), "cluster.env")
	os.WriteFile(p, data, 0o644)
	out, err := exec.Command(sh, "-c", `. "$0" && printf '%s\0%s\0%s\0%s\0%s' "$A" "$B" "$C" "$D" "$E"`, p).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(string(out), "\x00")
	for i, k := range []string{"A", "B", "C", "D", "E"} {
		if got[i] != env[k] {
			t.Errorf("shell read %s = %q, want %q", k, got[i], env[k])
		}
	}
	if _, err := FormatClusterEnv(map[string]string{"BAD-KEY": "x"}); err == nil {
		t.Error("FormatClusterEnv accepted an invalid key")
	}
}
