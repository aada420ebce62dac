// Rewrites a routing data set in gopkg.in/yaml.v3's default style:
// yaml.Marshal(data) (block style, four-space indent, sequences indented
// under their key, keys sorted when the data is a map, double quotes only
// where a plain scalar would read as something else). See convert.py.
//
// Debian packages both Go and the module, so no module proxy is needed:
//
//	apt-get install golang-go golang-gopkg-yaml.v3-dev
//	GO111MODULE=off GOPATH=/usr/share/gocode go run bench/styles/convert.go IN_DIR OUT_DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: convert.go IN_DIR OUT_DIR")
		os.Exit(2)
	}
	src, dst := os.Args[1], os.Args[2]
	if err := os.MkdirAll(dst, 0o755); err != nil {
		fail(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		fail(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		from := filepath.Join(src, name)
		text, err := os.ReadFile(from)
		if err != nil {
			fail(err)
		}
		if name == "calls.csv" {
			if err := os.WriteFile(filepath.Join(dst, name), text, 0o644); err != nil {
				fail(err)
			}
		}
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		// A generic value, as an export job that builds its document
		// from maps would hold it.
		var data interface{}
		if err := yaml.Unmarshal(text, &data); err != nil {
			fail(fmt.Errorf("%s: %w", from, err))
		}
		out, err := yaml.Marshal(data)
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), out, 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
