# The generating model: convert the embedded one once, and record what every result is tied to (its sha256).


rule convert_embedded_model:
    output:
        folder=directory(model_file(model_slug(EMBEDDED))),
    log:
        model_file("logs/convert_embedded_model.log"),
    benchmark:
        model_file("logs/convert_embedded_model.benchmark.tsv")
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        dtype="bfloat16",
        code=script_digest("convert_embedded_model.py"),
    script:
        "../../scripts/convert_embedded_model.py"


rule describe_model:
    input:
        unpack(describe_model_input),
    output:
        manifest=model_file("{slug}.json"),
    log:
        model_file("logs/describe_model.{slug}.log"),
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        path=model_path,
        code=script_digest("describe_model.py"),
    script:
        "../../scripts/describe_model.py"
