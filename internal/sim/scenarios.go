package sim

import (
	"embed"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/flexstream/flexstream/internal/sim/model"
)

// The built-in scenarios. testdata/scenarios links here, so that the
// files users read and edit are the ones the binary carries.
//
//go:embed scenarios/*.yaml
var scenarios embed.FS

// ScenarioNames lists the built-in scenarios.
func ScenarioNames() []string {
	entries, _ := scenarios.ReadDir("scenarios") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// LoadScenario reads a built-in scenario by name, or a YAML file.
func LoadScenario(nameOrFile string) (*model.Scenario, error) {
	if !strings.ContainsAny(nameOrFile, `/\.`) {
		data, err := scenarios.ReadFile(path.Join("scenarios", nameOrFile+".yaml"))
		if err != nil {
			return nil, fmt.Errorf("no built-in scenario %q (have %s)", nameOrFile, strings.Join(ScenarioNames(), ", "))
		}
		return model.ParseScenario(data)
	}
	data, err := os.ReadFile(nameOrFile)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return model.ParseScenario(data)
}
