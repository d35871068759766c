// The harness of the Java demo (mlprod.export.recode): reads model inputs as CSV rows on stdin,
// prints one line of probabilities per row; `softmax` turns m2cgen's logits into probabilities.
import java.io.BufferedReader;
import java.io.InputStreamReader;

public class Main {
    public static void main(String[] args) throws Exception {
        boolean softmax = args.length > 0 && args[0].equals("softmax");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] fields = line.split(",");
            double[] x = new double[fields.length];
            for (int j = 0; j < fields.length; j++) x[j] = Double.parseDouble(fields[j]);
            double[] p = Model.score(x);
            if (softmax) {
                double top = p[0], sum = 0;
                for (double v : p) top = Math.max(top, v);
                double[] e = new double[p.length];
                for (int k = 0; k < p.length; k++) { e[k] = Math.exp(p[k] - top); sum += e[k]; }
                for (int k = 0; k < p.length; k++) e[k] /= sum;
                p = e;
            }
            for (int k = 0; k < p.length; k++) out.append(k == 0 ? "" : ",").append(p[k]);
            out.append('\n');
        }
        System.out.print(out);
    }
}
