// compose-validate loads a Compose project the way `docker compose config` does
// (compose-go: schema validation, interpolation, normalisation, consistency checks)
// without a Docker engine, and prints the resolved model as JSON.
//
// Usage: compose-validate -f docker-compose.yml -env-file .env [-profile '*'] [-o out.json]
//
// Exit status 0 means the file is a valid Compose project for that environment;
// any load or validation error is printed to stderr with exit status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	composeFile := flag.String("f", "docker-compose.yml", "compose file to load")
	envFile := flag.String("env-file", "", "env file used for interpolation (required: the OS environment is ignored)")
	profiles := flag.String("profile", "*", "comma-separated profiles to enable ('*' = all)")
	projectName := flag.String("project-name", "tap", "project name")
	out := flag.String("o", "-", "where to write the resolved model as JSON ('-' = stdout)")
	flag.Parse()

	if *envFile == "" {
		fail("-env-file is required so that validation does not depend on the caller's environment")
	}
	if err := run(*composeFile, *envFile, *profiles, *projectName, *out); err != nil {
		fail(err.Error())
	}
}

func run(composeFile, envFile, profiles, projectName, out string) error {
	absFile, err := filepath.Abs(composeFile)
	if err != nil {
		return err
	}
	absEnv, err := filepath.Abs(envFile)
	if err != nil {
		return err
	}
	var profileList []string
	for _, p := range strings.Split(profiles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profileList = append(profileList, p)
		}
	}

	options, err := cli.NewProjectOptions(
		[]string{absFile},
		cli.WithName(projectName),
		cli.WithWorkingDirectory(filepath.Dir(absFile)),
		cli.WithEnvFiles(absEnv),
		cli.WithDotEnv,
		cli.WithProfiles(profileList),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return fmt.Errorf("configuring the loader: %w", err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return fmt.Errorf("invalid compose project: %w", err)
	}
	model, err := project.MarshalJSON()
	if err != nil {
		return fmt.Errorf("serialising the project: %w", err)
	}
	if out == "-" {
		_, err = os.Stdout.Write(append(model, '\n'))
		return err
	}
	return os.WriteFile(out, append(model, '\n'), 0o644)
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "compose-validate:", msg)
	os.Exit(1)
}
