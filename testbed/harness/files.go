package harness

import (
	"os"
	"path/filepath"
)

func writeEmpty(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte("# empty: defaults and flags only\n"), 0o644)
}
