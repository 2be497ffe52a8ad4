package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The cluster examples in deploy/ are not run (no cluster here): check that
// they parse and that their shard arithmetic agrees with itself.

func TestK8sIndexedJobManifest(t *testing.T) {
	b, err := os.ReadFile("../../deploy/k8s/score-indexed-job.yaml")
	require.NoError(t, err)
	var job struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			CompletionMode string `yaml:"completionMode"`
			Completions    int    `yaml:"completions"`
			Parallelism    int    `yaml:"parallelism"`
			Template       struct {
				Spec struct {
					RestartPolicy string `yaml:"restartPolicy"`
					Containers    []struct {
						Image   string   `yaml:"image"`
						Command []string `yaml:"command"`
						Args    []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(b, &job))
	assert.Equal(t, "batch/v1", job.APIVersion)
	assert.Equal(t, "Job", job.Kind)
	assert.Equal(t, "Indexed", job.Spec.CompletionMode, "JOB_COMPLETION_INDEX is set only in Indexed mode")
	assert.Equal(t, "Never", job.Spec.Template.Spec.RestartPolicy)
	require.Len(t, job.Spec.Template.Spec.Containers, 1)
	args := job.Spec.Template.Spec.Containers[0].Args
	require.Len(t, args, 1)
	m := regexp.MustCompile(`--shard "\$\{JOB_COMPLETION_INDEX\}/(\d+)"`).FindStringSubmatch(args[0])
	require.NotNil(t, m, "the command passes --shard ${JOB_COMPLETION_INDEX}/N: %s", args[0])
	n, _ := strconv.Atoi(m[1])
	assert.Equal(t, job.Spec.Completions, n, "completions equals the shard count")
	assert.Regexp(t, `--output "[^"]*\$\{JOB_COMPLETION_INDEX\}-of-`+m[1]+`\.`, args[0], "one output file per index")
}

func TestSlurmArrayScript(t *testing.T) {
	const path = "../../deploy/slurm/score-array.sh"
	out, err := exec.Command("bash", "-n", path).CombinedOutput()
	require.NoError(t, err, "bash -n: %s", out)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), `--shard "$I/$N"`)
	assert.Contains(t, string(b), `N=${SLURM_ARRAY_TASK_COUNT`)
	assert.Contains(t, string(b), `I=$SLURM_ARRAY_TASK_ID`)
}
