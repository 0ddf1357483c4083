package fleetenv

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The option table's texts are markdown; plain drops the backticks for
// -help, where they would be noise.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// PrintUsage writes every option with its flag, variable, default and
// meaning: what -help shows before the test binary's other flags.
func PrintUsage(w io.Writer) {
	fmt.Fprintln(w, "Options of the e2e harness: a flag beats its variable, which beats the default.")
	fmt.Fprintln(w, "Flags go after -args: go test ./e2e -args -envs=staging -fleet=fixtures/fleets/helm")
	for _, g := range optionGroups() {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, o := range g.options {
			fmt.Fprintf(w, "  -%s  %s  default: %s\n", o.flag, o.env, plain(o.defaultText()))
			fmt.Fprintf(w, "        %s\n", plain(o.meaning))
		}
	}
}

// markdownDefault is the default cell: the literal as code, the note as text.
func (o option) markdownDefault() string {
	switch {
	case o.def == "":
		return o.defNote
	case o.defNote == "":
		return "`" + o.def + "`"
	}
	return "`" + o.def + "` (" + o.defNote + ")"
}

// OptionsMarkdown is the README's configuration table: one row per option,
// short cells; docs/configuration.md (ConfigurationDoc) says more.
func OptionsMarkdown() string {
	var b strings.Builder
	b.WriteString("| Option (flag / variable) | Default | Meaning |\n|---|---|---|\n")
	for _, o := range optionTable() {
		fmt.Fprintf(&b, "| `-%s` / `%s` | %s | %s |\n", o.flag, o.env, o.markdownDefault(), o.meaning)
	}
	return b.String()
}

// ConfigurationDoc is docs/configuration.md: every option with its meaning
// and details, by group, and the variables that are not options.
func ConfigurationDoc() string {
	var b strings.Builder
	b.WriteString(configurationIntro)
	for _, g := range optionGroups() {
		fmt.Fprintf(&b, "\n## %s\n", g.title)
		for _, o := range g.options {
			fmt.Fprintf(&b, "\n### `-%s` / `%s`\n\n", o.flag, o.env)
			fmt.Fprintf(&b, "Default: %s.\n\n", o.markdownDefault())
			fmt.Fprintf(&b, "%s.", sentence(o.meaning))
			if o.details != "" {
				b.WriteString(" " + o.details)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(configurationOthers)
	return b.String()
}

// sentence starts s with a capital letter.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

const configurationIntro = `# Configuration

<!-- Generated from harness/fleetenv/options_table.go by
     go test ./harness/fleetenv -run TestGeneratedDocs -update
     Edit the table there, not this file. -->

Every option of the e2e harness is a flag of the test binary and an environment variable; a
flag beats its variable, which beats the default. Flags go after ` + "`-args`" + `:

    go test ./e2e -args -envs=staging -fleet=fixtures/fleets/helm
    E2E_ENVS=staging E2E_FLEET=fixtures/fleets/helm go test ./e2e

` + "`go test ./e2e -args -help`" + ` lists them all. Programs with flags of their own
(` + "`hack/bench`, `hack/soak`" + `) and the scenario tests read the variables. Every value is
checked before anything is created, and every bad one is reported at once, naming the flag or
variable, the value and the reason.
`

const configurationOthers = `
## Variables that are not options

- ` + "`FLEET_NODE_IMAGE`, `FLEET_NODE_IMAGE_BARE`, `FLEET_KIND_CONFIG`, `FLEET_FLUX_MANIFESTS`, `FLEET_FLUX_COMPONENTS`, `FLEET_PRELOAD_IMAGES`, `FLEET_EXTRA_CHARTS`" + `:
  the lines of the kit's profile file, which ` + "`-kit` / `E2E_KIT`" + ` names; the harness's options
  read them from that file, not from the environment.
- ` + "`FLEET_KIT_DIR`" + `: where ` + "`go run ./hack/kit`" + ` builds and caches the kit (default
  ` + "`${XDG_CACHE_HOME:-~/.cache}/flux-fleet/kit`" + `); the profile is ` + "`profile.env`" + ` in it.
- ` + "`FLEET_DIR`" + `: the fleet ` + "`hack/validate` and `hack/preflight`" + ` check when no ` + "`-fleet`" + ` is given.
- ` + "`FLEET_DOCKERD_LOG`" + `: the log file of the Docker engine ` + "`make docker-engine`" + ` starts.
- ` + "`CI=true`" + `: a test that cannot run here (no Docker engine, no kit) fails instead of
  skipping.
`
