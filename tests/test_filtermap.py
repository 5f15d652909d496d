"""The filter x image map: the long table of means and the heatmap's cells, sizes and scale."""

import numpy as np
import pytest

from conftest import write_activations
from filterlens import filtermap, topimages
from filterlens.render import quantize

LUT = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 40)], axis=1).astype(np.uint8)


@pytest.fixture
def image_set(tmp_path):
    rng = np.random.default_rng(5)
    folders = {}
    for image in ("kitten", "layer", "a b"):  # names that would break a column per image
        maps = {"c1": rng.standard_normal((3, 4, 4)), "c2": rng.standard_normal((2, 2, 2))}
        folders[image] = write_activations(tmp_path / image / "activations", maps)
    return topimages.load_set(folders)


def test_long_table_holds_every_filter_on_every_image(image_set, tmp_path):
    rows = list(filtermap.mean_rows(image_set))
    assert len(rows) == (3 + 2) * 3
    assert rows[:3] == [("c1", 0, image, float(image_set.peaks[image]["c1"].mean[0]))
                        for image in ("kitten", "layer", "a b")]  # fmt: skip
    path = tmp_path / filtermap.FILENAME
    filtermap.write_table(path, rows)
    assert path.read_text().splitlines()[0].split("\t") == list(filtermap.COLUMNS)
    names, means = filtermap.read_table(path)["c2"]
    assert names == ["kitten", "layer", "a b"]
    assert np.array_equal(means, image_set.values("c2", "mean").T)


def test_each_cell_has_the_color_of_its_mean_on_the_layers_scale():
    means = np.array([[0.0, 1.0, 2.0], [4.0, 3.0, np.nan]])
    page = filtermap.filter_map_page("m", "c1", "random weights (seed 0)", "s",
                                     ["x", "y", "z"], means, LUT)  # fmt: skip
    pixels = np.asarray(page.image)
    for f in range(2):
        for i in range(3):
            left, top, right, bottom = page.cell_box(f, i)
            value = 0.0 if np.isnan(means[f, i]) else means[f, i]  # NaN drawn at the low end
            level = quantize(np.array([value / 4.0]), 256)[0]
            assert (pixels[top:bottom, left:right] == LUT[level]).all(), (f, i)


@pytest.mark.parametrize("filters, images", [(512, 64), (64, 32), (3, 2)])
def test_cells_stay_readable_from_3_to_512_filters_and_up_to_64_images(filters, images):
    width, height = filtermap.cell_size(filters, images)
    assert width >= 12  # an 11 px name, turned, fits over its column
    assert height >= 2 and filters * height <= max(filtermap.MAP_HEIGHT, 16 * filters)
    names = [f"image_{i:02d}" for i in range(images)]
    page = filtermap.filter_map_page("m", "l", "w", "s", names, np.zeros((filters, images)), LUT)
    assert page.cell == (width, height)
    assert page.image.height < 1400 and page.image.width < 1500


def test_filter_labels_are_at_least_14_px_apart():
    assert filtermap._labelled_filters(512, 2) == list(range(0, 512, 10))
    assert filtermap._labelled_filters(64, 16) == list(range(64))
