# NSS toy pipeline: fully offline, CPU, < 1 min. Produces work_dirs/nss/toy/processed_dataset in DreamMask's
# format with ToyScenes class names (ovseg/datasets/toy_scenes.py), so DreamMask toy configs can train on it.
#
# What is real and what is a stand-in here:
#   * CNA runs the real counting/filtering code on CANNED answers (ScriptedLLM) -- there is no LLM offline.
#     The answers name the ToyScenes classes 'star' and 'cross' in >= 2 of 5 answers, so they become the novel
#     categories; base names, base synonyms ('sphere' = ball) and one-off names are filtered out.
#   * Layouts come from the real rule-based generator (support rules, overlap limit) on a 128x128 canvas.
#   * Images come from the procedural renderer, which draws ToyScenes' own class appearance.
#   * Masks/scores come from ProceduralOracleScorer, a documented TOY SCORER (not SAM/CLIP): masks are the
#     renderer's exact visible masks, mask_uncertainty = occluded fraction of the object, clip_score = colour
#     agreement with the class colour. DreamMask's thresholds (0.25 / 0.30) then reject objects that are more
#     than 30 % occluded. configs/nss/toy_sam_clip.py runs the same scenes through tiny random-init
#     SAM + CLIP.
seed = 0
work_dir = 'work_dirs/nss/toy'
num_scenes = 100
canvas = dict(width=128, height=128)
show_progress = True

# ToyScenes classes with their synonyms, minus the two held out as "novel" (star, cross).
base_vocabulary = dict(
    names=[['ball', 'sphere', 'orb'], ['box', 'cube', 'crate'], ['sign', 'triangle sign', 'warning sign'],
           ['ring', 'donut', 'hoop'], ['sky', 'clouds'], ['wall', 'brick wall', 'bricks'],
           ['grass', 'lawn', 'meadow'], ['water', 'sea', 'lake'], ['sand', 'beach', 'desert']])

cna = dict(
    n_repeat=5,
    top_k=30,
    min_count=2,
    max_attempts=3,
    llm=dict(
        type='ScriptedLLM',
        responses=[
            '["star", "cross", "sphere", "pebble"]',
            '1. Star\n2. Crosses\n3. Kite',
            '["stars", "shell", "lawn"]',
            '- cross\n- bucket\n- Ball',
            'not a list at all {',  # unparsable: retried, then the next canned answer is used
            '["umbrella", "sea"]',
        ]))

layout = dict(
    min_categories=5, max_categories=8, min_novel=1, cooc_boost=3.0,
    cooccurrence=dict(star=['sand', 'water'], ball=['grass', 'sand'], ring=['water'], sign=['grass', 'wall'],
                      cross=['grass', 'wall'], box=['sand', 'grass']), palette_seed=0,
    generator=dict(
        type='RuleBasedLayoutGenerator', max_iou=0.25, max_tries=30, horizon=(0.3, 0.55), min_size=6,
        default_rule=dict(kind='thing', support=('ground', ), size=(0.18, 0.32), aspect=(1.0, 1.0),
                          instances=(1, 2)),
        rules=dict(sky=dict(kind='stuff', region='top'), wall=dict(kind='stuff', region='top'),
                   grass=dict(kind='stuff', region='bottom'), water=dict(kind='stuff', region='bottom'),
                   sand=dict(kind='stuff', region='bottom'), ball=dict(support=('grass', 'sand', 'ground')),
                   box=dict(support=('ground', )), sign=dict(support=('grass', 'ground')),
                   ring=dict(support=('water', 'ground')), star=dict(support=('sand', 'water', 'ground')),
                   cross=dict(support=('ground', )))))

# paint_order='layout': the rule-based generator already lists objects back to front (background, far to near,
# supporters first); LLM layouts keep the renderer's default 'area' (larger boxes behind smaller ones).
render = dict(renderer=dict(type='ProceduralRenderer', palette_seed=0, batch_size=8, paint_order='layout'),
              resize_to_canvas=True)

masks = dict(scorer=dict(type='ProceduralOracleScorer'), clip_threshold=0.25, max_uncertainty=0.30,
             min_mask_area=1, keep_empty_scenes=False)
