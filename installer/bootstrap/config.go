package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
	"github.com/onramp-mesh/onramp/agent/config"
)

// setKeys sets top-level keys of the YAML configuration text: a line
// "key: value" replaces an existing "key:" line, or else the first
// commented-out "# key:" line, or else is appended. Other lines, comments
// included, are kept as they are, so running it again changes nothing.
func setKeys(text []byte, keys [][2]string) []byte {
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, kv := range keys {
		line := kv[0] + ": " + kv[1] + "\n"
		set := regexp.MustCompile(`^` + regexp.QuoteMeta(kv[0]) + `:`)
		commented := regexp.MustCompile(`^#\s*` + regexp.QuoteMeta(kv[0]) + `:`)
		at := -1
		for i, l := range lines {
			if set.MatchString(l) {
				at = i
				break
			}
		}
		if at < 0 {
			for i, l := range lines {
				if commented.MatchString(l) {
					at = i
					break
				}
			}
		}
		if at >= 0 {
			lines[at] = line
			continue
		}
		if n := len(lines); n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
			lines[n-1] += "\n"
		}
		lines = append(lines, line)
	}
	return []byte(strings.Join(lines, ""))
}

// writeConfig sets keys in the configuration file at path (created 0644 when
// missing) and checks that the result still parses. It reports whether the
// file changed.
func writeConfig(path string, keys [][2]string) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	updated := setKeys(old, keys)
	if bytes.Equal(old, updated) {
		return false, nil
	}
	cfg := config.Default()
	if err := config.Parse(updated, &cfg); err != nil {
		return false, fmt.Errorf("bootstrap: %s would not parse after setting %v: %w; fix the file by hand", path, keys, err)
	}
	if err := atomicfile.Write(path, updated, 0o644); err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	return true, nil
}

// configuredDataPlane returns the dataPlane the configuration file at path
// sets itself (not the default), or "".
func configuredDataPlane(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return ""
	}
	s, _ := top["dataPlane"].(string)
	return s
}
