/** The confusion matrix as a table whose cells are shaded by their share of the row (true class). */
export function ConfusionHeatmap({ matrix, classNames }: { matrix: number[][]; classNames: readonly string[] }) {
  return (
    <div class="scroll">
      <table class="heatmap" aria-label="confusion matrix: rows are the true classes, columns the predicted ones">
        <thead>
          <tr>
            <th scope="col">true ↓ / predicted →</th>
            {classNames.map((name, j) => <th scope="col" key={j} title={name}>{abbreviate(name)}</th>)}
          </tr>
        </thead>
        <tbody>
          {matrix.map((row, i) => {
            const total = row.reduce((a, b) => a + b, 0) || 1;
            return (
              <tr key={i}>
                <th scope="row">{classNames[i]}</th>
                {row.map((count, j) => {
                  const share = count / total;
                  const hue = i === j ? 210 : 10;
                  return (
                    <td key={j} style={{ background: count ? `hsl(${hue} 80% ${Math.round(96 - share * 56)}%)` : undefined, color: share > 0.55 ? '#fff' : undefined }} title={`${classNames[i]} predicted as ${classNames[j]}: ${count}`}>
                      {count}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function abbreviate(name: string): string {
  return name.length > 8 ? `${name.slice(0, 7)}…` : name;
}
