package scenarios

// parallelNote: every scenario that creates a cluster calls t.Parallel, so
// that they all share one pool of go test's -parallel slots (GOMAXPROCS by
// default: two clusters at a time on two cores). A scenario spends most of
// its time waiting (cluster start, Flux, the pod failure grace), so a slot
// is seldom idle. Fleets that can follow one another on one cluster do so
// (sharedCluster: TestBrokenFleetsFailFast, TestEditsOnAKeptCluster): a
// cluster and a Flux install cost more than clearing a fleet off. Other
// scenarios stay independent: each has its own cluster prefix, fleet copy,
// servers and temporary directory. More cores: go test -parallel N.
const parallelNote = "see the comment above"
