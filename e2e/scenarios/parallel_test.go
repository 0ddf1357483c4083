package scenarios

// parallelNote: every scenario that creates a cluster calls t.Parallel, so
// that they all share one pool of go test's -parallel slots (GOMAXPROCS by
// default: two clusters at a time on two cores) instead of the package
// running one cluster at a time outside TestBrokenFleetsFailFast. A scenario
// spends most of its time waiting (cluster start, Flux, the pod failure
// grace), so a slot is seldom idle. Scenarios stay independent: each has its
// own cluster prefix, fleet copy, servers and temporary directory. Raise the
// pool with `go test -parallel N` on a machine with more cores.
const parallelNote = "see the comment above"
