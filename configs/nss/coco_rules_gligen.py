# No LLM at all for layouts: CNA from a local model or skipped (give layout.novel_categories), rule-based
# COCO layouts (people/vehicles on the ground, tableware on tables ...), GLIGEN images, SAM + CLIP selection.
#   python tools/nss/run.py configs/nss/coco_rules_gligen.py --stages layout render masks
_base_ = ['./coco_gpt.py']
work_dir = 'work_dirs/nss/coco_rules_gligen'
layout = dict(
    novel_categories=[
        'road', 'sidewalk', 'wheel', 'lamp', 'shelf', 'plate', 'napkin', 'window', 'tree', 'fence', 'awning',
        'pillow', 'rug', 'stairway'
    ],  # used when cna/ has no output
    cooccurrence=dict(car=['road', 'traffic light', 'bus'], person=['sidewalk', 'bench', 'dog'],
                      plate=['dining table', 'fork', 'knife', 'cup'], couch=['pillow', 'rug', 'tv']),
    generator=dict(
        _delete_=True, type='RuleBasedLayoutGenerator', max_iou=0.3, max_tries=40, horizon=(0.3, 0.5),
        min_size=16, default_rule=dict(kind='thing', support=('ground', ), size=(0.12, 0.3),
                                       aspect=(0.5, 2.0), instances=(1, 2)),
        rules=dict(
            road=dict(kind='stuff', region='bottom'), sidewalk=dict(kind='stuff', region='bottom'),
            rug=dict(kind='stuff', region='bottom'), tree=dict(size=(0.3, 0.5), aspect=(0.5, 0.8)),
            car=dict(support=('road', 'ground'), size=(0.25, 0.45),
                     aspect=(1.5, 2.5)), bus=dict(support=('road', 'ground'), size=(0.4, 0.6),
                                                  aspect=(1.8, 2.8)),
            person=dict(support=('sidewalk', 'ground'), size=(0.25, 0.45), aspect=(0.3, 0.5),
                        instances=(1, 3)), plate=dict(support=('dining table', 'ground'), size=(0.08, 0.14),
                                                      aspect=(1.5, 2.5)),
            cup=dict(support=('dining table', 'ground'), size=(0.05, 0.09),
                     aspect=(0.7, 1.0)), bird=dict(support=('air', ), size=(0.05, 0.1)),
            kite=dict(support=('air', )), airplane=dict(support=('air', ), size=(0.2, 0.4),
                                                        aspect=(1.5, 3.0)))))
