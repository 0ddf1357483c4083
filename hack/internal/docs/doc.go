// Package docs holds the tests that keep README.md and docs/ honest: every
// relative link resolves, the README stays a front door (short, short table
// cells), the generated sections keep their markers and the package map of
// docs/design.md names exactly the harness's packages. It has no code.
package docs
