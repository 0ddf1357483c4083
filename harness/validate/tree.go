package validate

import (
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// Tree renders one environment like `flux tree kustomization flux-system`:
// each Flux Kustomization with the objects it applies, nested.
func (f *Fleet) Tree(env string) string {
	e := f.Env(env)
	if e == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(e.Name + " (" + e.Dir + ")\n")
	root := ObjectRef{Kind: "Kustomization", Namespace: fluxobj.Namespace, Name: fluxobj.SyncName}
	b.WriteString("└── " + label(e, root) + "\n")
	e.writeChildren(&b, root, "    ", map[ObjectRef]bool{root: true})
	return b.String()
}

func (e *Env) writeChildren(b *strings.Builder, parent ObjectRef, indent string, seen map[ObjectRef]bool) {
	kids := e.children[parent]
	for i, k := range kids {
		branch, next := "├── ", "│   "
		if i == len(kids)-1 {
			branch, next = "└── ", "    "
		}
		b.WriteString(indent + branch + label(e, k) + "\n")
		if !seen[k] {
			seen[k] = true
			e.writeChildren(b, k, indent+next, seen)
		}
	}
}

func label(e *Env, ref ObjectRef) string {
	s := ref.String()
	if o := e.index[ref]; o != nil {
		switch {
		case o.Implicit:
			s += " (bootstrap)"
		case o.External:
			s += " (external source, not built)"
		}
	}
	return s
}
