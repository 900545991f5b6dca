# Is temperature the creativity parameter of LLMs? Replication pipeline (see README.md).
from snakemake.utils import min_version

min_version("9.19")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/ratings.smk"
include: "workflow/rules/survey.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/track.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


onsuccess:
    print_outputs()
