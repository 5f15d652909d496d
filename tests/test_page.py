"""The page says how the image was preprocessed and how the network was built."""

from filterlens import page


def test_input_note_names_preprocessing_and_construction():
    extraction = {
        "preprocess": {"mode": "letterbox", "description": "letterboxed: 451x300 scaled to 224x149"},
        "construction": {
            "construction": "pretrained", "transform_input": True,
            "builder": "torchvision.models.get_model('googlenet', weights=GoogLeNet_Weights.IMAGENET1K_V1)",
        },
    }  # fmt: skip
    assert page.input_note(extraction) == (
        " (letterboxed: 451x300 scaled to 224x149; network: torchvision.models.get_model("
        "&#x27;googlenet&#x27;, weights=GoogLeNet_Weights.IMAGENET1K_V1), transform_input=True)"
    )


def test_input_note_is_empty_for_an_older_extraction():
    assert page.input_note({"img_size": [224, 224]}) == ""


def test_the_page_shows_the_note():
    extraction = {"img_size": [224, 224], "preprocess": {"description": "stretched from 451x300"}}
    html = page.render_page(page.Page(
        model="resnet18", image="chelsea", weights="random weights", random_weights=True,
        extraction=extraction, predictions=[], layers=[], input_image="input.png",
        stats_plot="layer_stats.png",
    ))  # fmt: skip
    assert "The model saw the image at 224x224 pixels (stretched from 451x300) on ?" in html
