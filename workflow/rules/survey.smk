# Planning a human evaluation of the run's stories (survey.enabled; docs/human-study.md): the power of the temperature
# test per criterion over a grid of designs and on the planned survey's, and the survey itself.


rule plan_human_study:
    input:
        stories=rules.collect_generations.output.stories,
        ratings=SURVEY_RATINGS,
    output:
        power=result("survey/power.csv"),
        png=result("survey/power.png"),
        svg=result("survey/power.svg"),
        sentences=result("survey/power.txt"),
        key=result("survey/key.csv"),
        assignments=result("survey/assignments.csv"),
        design=result("survey/design.txt"),
        forms=directory(result("survey/forms")),
    log:
        result("logs/plan_human_study.log"),
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        survey=config["survey"],
        source=SURVEY_SOURCE,
        code=script_digest("plan_human_study.py"),
    script:
        "../../scripts/plan_human_study.py"
