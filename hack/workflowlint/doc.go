// Package workflowlint lints the repository's GitHub workflows from go test:
// actionlint's checks, and the project's own rules (Check) on what the
// workflows promise — secrets only through env, a kubeconfig written to a
// 0600 file and never printed, the kit cache keyed by the kit's hash and
// saved on main only, the nightly summary after every job. A broken
// workflow cannot run on a developer machine; this catches it there.
package workflowlint
