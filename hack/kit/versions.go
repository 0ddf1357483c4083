package main

import "github.com/flux-fleet/flux-fleet/harness/kitprofile"

// version is one assignment of versions.env (kitprofile reads the file for
// the kit and the harness alike).
type version = kitprofile.Version

// lookup returns the value of a version, or an error naming it.
func lookup(versions []version, name string) (string, error) {
	return kitprofile.LookupVersion(versions, name)
}
