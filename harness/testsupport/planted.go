package testsupport

// PlantedValue is the value fixtures/fleets/helm-bad-value plants in
// nginx's values where the chart's schema rejects it: Helm quotes it in its
// error as it would a secret, so no artifact or log of a run may show it.
const PlantedValue = "PLANTED-Value-9c2e"

// PlantedValueDigest is what artifacts and logs show instead: "sha256:" and
// the first 12 hex digits of the sha256 of the value's JSON, given as text
// so that tests do not take it from the code under test.
const PlantedValueDigest = "sha256:3d2c53dcc348"

// PlantedValuePattern is the pattern nginx's chart schema gives the planted
// value's key, clusterDomain, as Helm quotes it in the rejection.
const PlantedValuePattern = `'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'`
