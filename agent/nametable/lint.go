package nametable

import (
	"strings"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Lint checks t as an operator's tool would: it returns the index Build
// makes of t (nil if Build refuses the options) and every problem found,
// one message per problem naming its entry. The problems are what the
// agent would not serve (Index.Skipped): each address dropped, each entry
// skipped; an entry whose addresses were all dropped is said so on its
// last address's line rather than on a line of its own.
func Lint(t *ndspb.NameTable, hc HostContext, opt Options) (*Index, []string) {
	ix, err := Build(t, hc, opt)
	if err != nil {
		return nil, []string{strings.TrimPrefix(err.Error(), "nametable: ")}
	}
	var problems []string
	last := map[string]int{} // host -> index of its last address problem
	for _, s := range ix.Skipped() {
		if i, ok := last[s.Host]; ok && s.Entry && s.Address == "" {
			problems[i] += "; the entry has no address left and is skipped"
			continue
		}
		if s.Address != "" {
			last[s.Host] = len(problems)
		}
		p := s.String()
		if s.Entry && s.Reason == "no addresses" {
			p += "; the agent answers nothing for it"
		}
		problems = append(problems, p)
	}
	return ix, problems
}
