package nametable

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Lint checks t as an operator's tool would, stricter than the agent: it
// returns the index Build makes of t (nil if Build refuses t) and every
// problem found, one message per problem naming its entry. Besides what
// Build refuses, an entry with no address is a problem: the agent skips it
// (it cannot answer it), so it is almost always a mistake in the table.
func Lint(t *ndspb.NameTable, hc HostContext, opt Options) (*Index, []string) {
	var problems []string
	ix, err := Build(t, hc, opt)
	if err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "nametable: "))
	}
	table := t.GetTable()
	keys := make([]string, 0, len(table))
	for k, info := range table {
		if len(info.GetIps()) == 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		problems = append(problems, fmt.Sprintf("entry %q: no addresses; the agent skips it and answers nothing for it", k))
	}
	return ix, problems
}
