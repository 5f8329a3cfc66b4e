# Layout-to-image by an external tool (e.g. LayoutGPT): run `--stages cna layout`, write real_XXXXX.png
# for each layouts_dataset/scene_XXXXX.json into image_dir, then `--stages render masks` with this config.
_base_ = ['./coco_gpt.py']
work_dir = 'work_dirs/nss/coco_gpt'  # same work dir: reuse its cna/ and layouts_dataset/
render = dict(
    renderer=dict(_delete_=True, type='ExternalImagesRenderer', image_dir='work_dirs/nss/external_images',
                  pattern='real_{idx}.png', batch_size=16))
