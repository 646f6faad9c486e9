package zones

import (
	"bytes"
	"path/filepath"
	"strings"
)

// Parse loads a zone from data read from source, choosing the format by
// the extension of source: .yaml and .yml are the declarative YAML format
// (ParseYAML), anything else an RFC 1035 master file (ParseMaster) whose
// origin is given inside the file. The zone is then normalized (Normalize)
// and validated (Validate). Errors in the zone are returned as Errors,
// each naming source and, where there is one, the line.
func Parse(data []byte, source string) (*Zone, error) {
	var (
		z   *Zone
		err error
	)
	switch strings.ToLower(filepath.Ext(source)) {
	case ".yaml", ".yml":
		z, err = ParseYAML(data, source)
	default:
		z, err = ParseMaster(bytes.NewReader(data), source, "")
	}
	if err != nil {
		return nil, err
	}
	Normalize(z)
	if err := Validate(z); err != nil {
		return nil, err
	}
	return z, nil
}
