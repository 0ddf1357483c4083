package fleetenv

// firstRevision is the revision the git server starts with: the base of an
// upgrade, else the revision replayed ("" for the working tree).
func (o Options) firstRevision() string {
	if o.Base != "" {
		return o.Base
	}
	return o.Revision
}
