"""tools/image_demo.py: overlays + segment JSON for a custom vocabulary and for the config's own vocabulary."""
import json
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint

CONFIG = 'configs/fcclip/fcclip_tiny_toy-scenes.py'


def require_fcclip_modules():
    """Register the FC-CLIP modules (pixel decoder, decoder, criterion) before building configs."""
    import ovseg.models  # noqa: F401


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory, repo_root):
    require_fcclip_modules()
    import ovseg.models  # noqa: F401
    from ovseg.registry import MODELS
    init_default_scope('ovseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(repo_root / CONFIG)).model)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return path


@pytest.fixture()
def image(tmp_path):
    img = np.zeros((70, 90, 3), np.uint8)
    img[:35] = (120, 180, 240)
    img[35:] = (70, 150, 50)
    cv2.circle(img, (45, 40), 12, (40, 40, 220), -1)
    path = tmp_path / 'scene.png'
    cv2.imwrite(str(path), img)
    return path


def _demo(repo_root, monkeypatch, argv):
    monkeypatch.chdir(repo_root)
    sys.path.insert(0, str(repo_root / 'tools'))
    import image_demo as demo
    return demo.main(argv)


def test_demo_custom_vocabulary(repo_root, monkeypatch, tmp_path, image, tiny_checkpoint):
    out = tmp_path / 'out'
    res = _demo(repo_root, monkeypatch, [
        str(image), '--config', CONFIG, '--checkpoint',
        str(tiny_checkpoint), '--vocabulary', 'ball,sphere;sky,clouds;grass', '--things', '1,0,0', '--out',
        str(out), '--device', 'cpu'
    ])
    assert len(res) == 1
    record = json.loads((out / 'scene.json').read_text())
    pan = cv2.imread(str(out / 'scene_panoptic.png'))
    assert pan.shape == (70, 90, 3)  # overlay at the original image size
    assert (out / 'scene_semantic.png').is_file()
    for seg in record['segments']:
        assert seg['category'] in ('ball', 'sky', 'grass')
        assert seg['isthing'] == (seg['category'] == 'ball')
        assert seg['area'] > 0
    assert sum(record['semantic_classes'].values()) == 70 * 90


def test_demo_default_vocabulary_is_the_config_dataset(repo_root, monkeypatch, tmp_path, image,
                                                       tiny_checkpoint):
    out = tmp_path / 'out'
    _demo(repo_root, monkeypatch, [
        str(image), '--config', CONFIG, '--checkpoint',
        str(tiny_checkpoint), '--out',
        str(out), '--device', 'cpu'
    ])
    record = json.loads((out / 'scene.json').read_text())
    toy = {'ball', 'box', 'sign', 'ring', 'star', 'cross', 'sky', 'wall', 'grass', 'water', 'sand'}
    assert set(record['semantic_classes']) <= toy
