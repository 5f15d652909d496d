"""Dataset-example pages: crops are exactly the receptive field (whole-factor nearest, gray past
the border), whole-image tiles mark the unit, and tiles sit where the page says."""

import numpy as np
from PIL import Image

from filterlens import examples
from filterlens.receptive import Field
from filterlens.topimages import Example

# a 16 x 12 input whose every pixel differs
COLS, ROWS = np.meshgrid(np.arange(12) * 20, np.arange(16) * 15)
PIXELS = np.stack([COLS, ROWS, np.full((16, 12), 77)], axis=-1).astype(np.uint8)
INPUT = Image.fromarray(PIXELS, "RGB")
# 3 x 3 fields at stride 2 from -1: an 8 x 6 map; a field wider than the image: 2 x 2 map
SMALL = Field("s", (8, 6), (16, 12), (3, 3), (2, 2), (-1, -1), (0, 0, 16, 12))
LARGE = Field("w", (2, 2), (16, 12), (23, 23), (8, 8), (-11, -11), (0, 0, 16, 12))


def test_an_inner_crop_is_the_field_enlarged_by_a_whole_factor():
    crop = np.asarray(examples.field_crop(INPUT, SMALL, 2, 3, 32))  # rows 3..5, columns 5..7
    assert crop.shape == (30, 30, 3)  # 3 px x 10, not stretched to 32
    blocks = crop[::10, ::10]
    assert (blocks == PIXELS[3:6, 5:8]).all()
    assert (crop == np.repeat(np.repeat(blocks, 10, 0), 10, 1)).all()


def test_a_border_crop_keeps_the_field_and_shows_gray_beyond_the_image():
    crop = np.asarray(examples.field_crop(INPUT, SMALL, 0, 5, 30))  # rows -1..1, columns 9..11
    blocks = crop[::10, ::10]
    assert (blocks[0] == examples.OUTSIDE).all()  # row -1
    assert (blocks[1:] == PIXELS[0:2, 9:12]).all()


def test_a_field_wider_than_the_image_shows_it_whole_with_the_unit_framed():
    tile = np.asarray(examples.field_crop(INPUT, LARGE, 1, 0, 32))
    assert tile.shape == (32, 24, 3)  # the whole 16 x 12 input, twice
    red = np.argwhere((tile == examples.MARK).all(-1))
    # unit (1, 0): field rows -3..19, columns -11..11, centre (8.5, 0.5): its stride-sized cell
    # is rows 4..11, columns 0..3 (clipped), at twice the size rows 8..23, columns 0..7
    assert (red.min(0).tolist(), red.max(0).tolist()) == ([8, 0], [23, 7])
    assert (tile[0, 20] == PIXELS[0, 10]).all()  # it sees everything: nothing faded


def test_what_a_unit_does_not_see_is_faded():
    tile = np.asarray(examples.field_crop(INPUT, LARGE, 0, 0, 32)).astype(int)
    # unit (0, 0) sees rows and columns 0..11 of the 16 x 12 image: rows 12..15 fade
    assert (tile[22, 20] == PIXELS[11, 10]).all()
    faded = np.round(0.4 * PIXELS[14, 10] + 0.6 * 255)
    assert np.abs(tile[28, 20] - faded).max() <= 1


def test_the_page_puts_each_filters_crops_in_its_row():
    ranked = {
        f: [Example("s", f, "max", r + 1, name, 1.0 / (r + 1), y, x, SMALL.box(y, x), False)
            for r, (name, y, x) in enumerate([("one", 2, 3), ("two", 4, f % 6)])]
        for f in range(5)
    }  # fmt: skip
    inputs = {"one": INPUT, "two": INPUT.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}
    page = examples.examples_page("m", "s", "random weights (seed 0)", "demo", 2, SMALL, ranked,
                                  inputs, k=8, tile=30)  # fmt: skip
    pixels = np.asarray(page.image)
    for i, f in enumerate(page.filters):
        for j, e in enumerate(ranked[f]):
            crop = np.asarray(examples.field_crop(inputs[e.image], SMALL, e.y, e.x, 30))
            x, y = page.tile_origin(i, j)
            assert (pixels[y : y + 30, x : x + 30] == crop).all(), (f, j)
        x, y = page.tile_origin(i, 2)  # k = 8, but the set has two images: nothing more
        assert (pixels[y : y + 30, x : x + 30] == 255).all()


def test_a_512_filter_layer_wraps_into_columns_of_small_tiles():
    layout = examples.Layout(512, 8, examples.tile_size(512), 30)
    assert layout.tile == 48 and 1 < layout.columns <= 4
    assert layout.size[0] <= examples.PAGE_WIDTH
    assert layout.rows * layout.columns >= 512
    assert layout.origin(layout.rows) == (layout.block[0] + 3 * examples.GAP, 0)  # next column
