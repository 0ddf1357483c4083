// Package workflowlint holds a test that lints the repository's GitHub
// workflows with actionlint, so a broken nightly workflow (which cannot run
// on a developer machine) is caught by go test.
package workflowlint
