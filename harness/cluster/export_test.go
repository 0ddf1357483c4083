package cluster

// For the package's external tests: the kind config decode and the node
// labelling Create uses.
var (
	ParseKindConfig = parseKindConfig
	WithNodeLabels  = withMarker
)
