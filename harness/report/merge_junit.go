package report

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
)

// TestResults counts one shard's tests from its JUnit files.
type TestResults struct {
	Total   int `json:"total"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// FailedNames are the failed tests as "<package or suite> <test>", in
	// file order; never their failure message, which may quote anything
	// the test printed.
	FailedNames []string `json:"failedNames,omitempty"`
}

// junitSuites is the part of a JUnit file the merge reads. go-junit-report
// and gotestsum both write <testsuites><testsuite><testcase>; a single
// <testsuite> root is read too.
type junitSuites struct {
	XMLName xml.Name
	Suites  []junitSuite `xml:"testsuite"`
	junitSuite
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string    `xml:"name,attr"`
	ClassName string    `xml:"classname,attr"`
	Failure   *struct{} `xml:"failure"`
	Error     *struct{} `xml:"error"`
	Skipped   *struct{} `xml:"skipped"`
}

// readJUnitDir adds up every *.xml file in dir.
func readJUnitDir(dir string) (TestResults, error) {
	var total TestResults
	paths, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return total, fmt.Errorf("listing the JUnit files in %s: %w", dir, err)
	}
	for _, p := range paths {
		if err := readJUnit(p, &total); err != nil {
			return total, err
		}
	}
	return total, nil
}

// readJUnit adds the test cases of one JUnit file to into.
func readJUnit(path string, into *TestResults) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the JUnit report: %w", err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("JUnit report %s: not JUnit XML: %w", path, err)
	}
	suites := doc.Suites
	switch doc.XMLName.Local {
	case "testsuites":
	case "testsuite":
		suites = []junitSuite{doc.junitSuite}
	default:
		return fmt.Errorf("JUnit report %s: root element <%s>, want <testsuites> or <testsuite>", path, doc.XMLName.Local)
	}
	for _, s := range suites {
		for _, c := range s.Cases {
			into.Total++
			switch {
			case c.Failure != nil || c.Error != nil:
				into.Failed++
				suite := c.ClassName
				if suite == "" {
					suite = s.Name
				}
				into.FailedNames = append(into.FailedNames, suite+" "+c.Name)
			case c.Skipped != nil:
				into.Skipped++
			}
		}
	}
	return nil
}
