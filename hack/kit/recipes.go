package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// recipeFile is recipes.sh as the hashes see it: the text of each function
// and of each top-level variable assignment, by name.
type recipeFile struct {
	path  string
	funcs map[string]string
	vars  map[string]string
}

var (
	funcStart  = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\(\)\s*\{(.*)$`)
	assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=`)
	// A here-document operator (<<WORD, <<-WORD, <<'WORD', <<"WORD"), not a
	// here-string (<<<).
	heredocOp  = regexp.MustCompile(`(?:^|[^<])<<(-?)[ \t]*(['"]?)([A-Za-z_][A-Za-z0-9_]*)(['"]?)`)
	identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// parseRecipes extracts the functions and top-level assignments of a shell
// file written in recipes.sh's style: a function starts with "name() {" at
// the start of a line and ends with the next line that is exactly "}"
// outside a here-document, or on the same line ("name() { ...; }"); a
// top-level assignment starts with NAME= at the start of a line and goes on
// over lines ending in a backslash.
func parseRecipes(path string, src []byte) (*recipeFile, error) {
	r := &recipeFile{path: path, funcs: map[string]string{}, vars: map[string]string{}}
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := funcStart.FindStringSubmatch(line); m != nil {
			name, rest := m[1], strings.TrimSpace(m[2])
			if _, dup := r.funcs[name]; dup {
				return nil, fmt.Errorf("%s:%d: function %s is defined twice", path, i+1, name)
			}
			if rest != "" && !strings.HasPrefix(rest, "#") && strings.HasSuffix(rest, "}") {
				r.funcs[name] = line
				continue
			}
			end, err := functionEnd(lines, i)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: function %s: %w", path, i+1, name, err)
			}
			r.funcs[name] = strings.Join(lines[i:end+1], "\n")
			i = end
			continue
		}
		if m := assignment.FindStringSubmatch(line); m != nil {
			start := i
			for strings.HasSuffix(lines[i], `\`) && i+1 < len(lines) {
				i++
			}
			r.vars[m[1]] = strings.Join(lines[start:i+1], "\n")
		}
	}
	return r, nil
}

// functionEnd returns the index of the line closing the function that
// opens at lines[start], skipping here-document bodies (a JSON body may
// hold a lone "}").
func functionEnd(lines []string, start int) (int, error) {
	type heredoc struct {
		word      string
		stripTabs bool
	}
	var pending []heredoc
	open := func(line string) {
		for _, m := range heredocOp.FindAllStringSubmatch(line, -1) {
			pending = append(pending, heredoc{word: m[3], stripTabs: m[1] == "-"})
		}
	}
	open(lines[start])
	for i := start + 1; i < len(lines); i++ {
		line := lines[i]
		if len(pending) > 0 {
			body := line
			if pending[0].stripTabs {
				body = strings.TrimLeft(body, "\t")
			}
			if body == pending[0].word {
				pending = pending[1:]
			}
			continue
		}
		if line == "}" {
			return i, nil
		}
		open(line)
	}
	if len(pending) > 0 {
		return 0, fmt.Errorf("here-document %s is never closed", pending[0].word)
	}
	return 0, fmt.Errorf(`no closing "}" at the start of a line`)
}

// closure returns the names of roots and of every function they call,
// directly or through others (any word of their text that names a function
// of the file), sorted, without the functions that only report.
func (r *recipeFile) closure(roots []string) ([]string, error) {
	seen := map[string]bool{}
	queue := slices.Clone(roots)
	for _, name := range roots {
		if _, ok := r.funcs[name]; !ok {
			return nil, fmt.Errorf("%s has no function %s", r.path, name)
		}
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] || reportsOnly(name) {
			continue
		}
		seen[name] = true
		for _, word := range identifier.FindAllString(r.funcs[name], -1) {
			if _, ok := r.funcs[word]; ok && !seen[word] {
				queue = append(queue, word)
			}
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// reportsOnly tells the functions that only print: editing a message must
// not rebuild the kit.
func reportsOnly(name string) bool {
	switch name {
	case "log", "die", "on_error":
		return true
	}
	return false
}

// references reports whether text expands the variable name ($NAME or
// ${NAME...}), not merely a longer name that starts with it.
func references(text, name string) bool {
	for _, op := range []string{"$" + name, "${" + name} {
		for rest := text; ; {
			i := strings.Index(rest, op)
			if i < 0 {
				break
			}
			rest = rest[i+len(op):]
			if rest == "" || !isWordByte(rest[0]) {
				return true
			}
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
