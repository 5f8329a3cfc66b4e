"""InternVL dynamic tiling: grids for known aspect ratios (worked out by hand from the official rule), the tie
rule, tile order, thumbnail, and the ImageNet normalisation against torchvision's transform."""
import numpy as np
import pytest
import torch
from PIL import Image

from projects.sa2va_sft.sa2va_sft.image_tiling import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    candidate_grids,
    dynamic_preprocess,
    normalize_tiles,
    preprocess_image,
    tile_grid,
)

S = 448
HALF_TILE_AREA = 0.5 * S * S  # the tie rule compares the image area with this times cols·rows


def test_candidate_order_is_internvls():
    """InternVL's order for min 1 / max 12 (products ascending; equal products in its set-iteration order)."""
    assert candidate_grids(1, 12) == [
        (1, 1), (1, 2), (2, 1), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (1, 6), (6, 1), (3, 2),
        (2, 3), (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (1, 9), (3, 3), (9, 1), (2, 5), (5, 2), (10, 1),
        (1, 10), (11, 1), (1, 11), (12, 1), (3, 4), (4, 3), (1, 12), (6, 2), (2, 6)]
    assert all(2 <= c * r <= 4 for c, r in candidate_grids(2, 4))


@pytest.mark.parametrize('size,grid', [
    ((800, 600), (4, 3)),    # 4:3 is exactly 4/3 → 4 cols x 3 rows (12 tiles)
    ((600, 800), (3, 4)),    # portrait 3:4
    ((100, 1000), (1, 10)),  # 0.1 = 1/10 exactly
    ((5000, 100), (12, 1)),  # 50 → the widest grid
])
def test_closest_aspect_ratio(size, grid):
    assert tile_grid(*size) == grid


@pytest.mark.parametrize('size,grid,why', [
    # square: (1,1), (2,2), (3,3) all differ by 0 → a larger grid only if area > HALF_TILE_AREA · cols·rows
    ((448, 448), (1, 1), 'area 200704 <= 401408 = half of 2x2'),
    ((900, 900), (2, 2), 'area 810000 > 401408 but <= 903168 = half of 3x3'),
    ((1000, 1000), (3, 3), 'area 1000000 > 903168'),
    # 1.75 is 0.25 from (2,1) = 2, (3,2) = 1.5 and (4,2) = 2 alike, visited in that order
    ((700, 400), (2, 1), 'area 280000 <= 602112 = half of 3x2'),
    ((1050, 600), (3, 2), 'area 630000 > 602112 but <= 802816 = half of 4x2'),
    ((1400, 800), (4, 2), 'area 1120000 > 802816'),
    # 16:9 full HD: 1.778 is 0.222 from (2,1) and from (4,2); big image → (4,2)
    ((1920, 1080), (4, 2), 'area 2073600 > 802816'),
])
def test_tie_rule(size, grid, why):
    assert tile_grid(*size) == grid, why


def test_min_and_max_num():
    assert tile_grid(800, 600, max_num=6) == (3, 2)  # 4x3 not allowed; 1.5 is the closest left
    assert tile_grid(448, 448, min_num=2) == (2, 2)  # 1x1 excluded; 2x2 is exact, 3x3 loses the tie
    assert tile_grid(5000, 100, max_num=4) == (4, 1)
    with pytest.raises(ValueError, match='min_num'):
        tile_grid(10, 10, min_num=3, max_num=2)
    with pytest.raises(ValueError, match='positive'):
        tile_grid(0, 10)


def _quadrants() -> Image.Image:
    """896x896: red | green over blue | white → a 2x2 grid (896² = 802816 > 401408, <= 903168)."""
    arr = np.zeros((896, 896, 3), np.uint8)
    arr[:448, :448] = (255, 0, 0)
    arr[:448, 448:] = (0, 255, 0)
    arr[448:, :448] = (0, 0, 255)
    arr[448:, 448:] = (255, 255, 255)
    return Image.fromarray(arr)


def test_tiles_are_row_major_with_thumbnail_last():
    tiles = dynamic_preprocess(_quadrants())
    assert len(tiles) == 5 and all(t.size == (S, S) for t in tiles)
    centres = [tuple(np.asarray(t)[224, 224]) for t in tiles[:4]]
    assert centres == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    thumb = np.asarray(tiles[4])
    assert tuple(thumb[100, 100]) == (255, 0, 0) and tuple(thumb[350, 350]) == (255, 255, 255)
    assert len(dynamic_preprocess(_quadrants(), use_thumbnail=False)) == 4
    assert len(dynamic_preprocess(Image.new('RGB', (448, 448)))) == 1  # one tile: no thumbnail


def test_800x600_gives_12_tiles_and_a_thumbnail():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8))
    pixel_values, grid = preprocess_image(image)
    assert grid == (4, 3)
    assert pixel_values.shape == (13, 3, S, S) and pixel_values.dtype == torch.float32
    resized = np.asarray(image.resize((4 * S, 3 * S)))  # tile 5 = row 1, col 1
    own = normalize_tiles([Image.fromarray(resized[S:2 * S, S:2 * S])])
    torch.testing.assert_close(pixel_values[5], own[0])


def test_normalisation_matches_torchvision():
    T = pytest.importorskip('torchvision.transforms')
    from torchvision.transforms.functional import InterpolationMode
    ref = T.Compose([T.Lambda(lambda img: img.convert('RGB')),
                     T.Resize((S, S), interpolation=InterpolationMode.BICUBIC), T.ToTensor(),
                     T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)])
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (S, S, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (300, 500), dtype=np.uint8), mode='L')]  # resized + RGB
    ours = normalize_tiles(images)
    for i, image in enumerate(images):
        torch.testing.assert_close(ours[i], ref(image), atol=1e-5, rtol=0)


def test_normalised_red_pixel_value():
    out = normalize_tiles([Image.new('RGB', (S, S), (255, 0, 0))])
    expected = [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                -IMAGENET_MEAN[2] / IMAGENET_STD[2]]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(expected))
    with pytest.raises(ValueError, match='no tiles'):
        normalize_tiles([])
